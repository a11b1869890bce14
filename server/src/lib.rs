//! The Tenantless management service: what a Windows device enrolls into and checks in
//! with, and what an administrator (or a test) drives.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod enroll;
pub mod journal;
pub mod omadm;
pub mod pki;
pub mod storage;
