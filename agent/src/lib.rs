//! One simulated Windows device, usable as a library (many devices in one process) and
//! as the `tenantless-agent` binary. Every answer it gives is computed from state it
//! keeps: a registry, a virtual `C:` drive, installed programs.
//!
//! - [`device`]: the device model and its installer runtime.
//! - [`enroll`]: the MS-MDE2 enrollment client.
//! - [`omadm`] and [`csp`]: management sessions and the DM tree that answers them.
//! - [`ime`]: the Intune Management Extension service.
//! - [`agent`]: the facade that schedules all of it from an injected `now`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod clock;
pub mod cmtrace;
pub mod csp;
pub mod device;
pub mod enroll;
pub mod error;
pub mod http;
pub mod ime;
pub mod omadm;
pub mod remote_clock;
pub mod state;
pub mod unenroll;

pub use agent::{Activity, Agent, StatusReport};
pub use enroll::EnrollRequest;
pub use error::AgentError;
