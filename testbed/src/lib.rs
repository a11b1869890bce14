//! The world: a Tenantless server and N simulated devices on one clock, with scenarios,
//! journal queries and verification, and reports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod demo;
pub mod report;
pub mod scenario;
pub mod world;
