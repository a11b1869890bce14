//! One simulated Windows device, usable as a library (many devices in one process) and
//! as the `tenantless-agent` binary. Every answer it gives is computed from state it
//! keeps: a registry, a virtual `C:` drive, installed programs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod device;
