//! The world: a Tenantless server and N simulated devices on one clock, with journal
//! queries and verification, a readable timeline, and the demo.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod console;
pub mod demo;
mod due;
pub mod fleet;
pub mod logs;
pub mod pack;
pub mod remote_server;
pub mod report;
pub mod scenario;
pub mod sign;
pub mod timeline;
pub mod workload;
pub mod world;

pub use server::journal::{Expectation, Filter, Verification};
pub use world::{AdminBody, World, WorldError, WorldOptions};
