//! Wire formats of Windows device management, as pure data: no I/O, no async, no clock.
//!
//! - [`dm`]: SyncML DM 1.2 (OMA-DM) messages, status and alert codes, server replies,
//!   the MD5 digest credential.
//! - [`mde2`]: MS-MDE2 enrollment SOAP messages (discovery, MS-XCEP policy, MS-WSTEP
//!   enroll) and faults.
//! - [`provisioning`]: the `wap-provisioningdoc` an enrollment returns.
//! - [`msi_job`]: the `MsiInstallJob` of the EnterpriseDesktopAppManagement CSP.
//! - [`sim_msi`]: the simulated MSI package format the server hosts and the agent installs.
//! - [`intunewin`]: the encrypted `.intunewin` content package of Win32 apps.
//! - [`version`]: ordering dotted version numbers.
//! - [`entra`]: a user's identifiers as Windows and the services see them (object id, SID).
//!
//! Every parser is total: any bytes in, a value or an [`Error`] out, never a panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cms;
pub mod dm;
pub mod entra;
pub mod error;
pub mod intunewin;
pub mod mde2;
pub mod msi_job;
pub mod provisioning;
pub mod sim_msi;
pub mod version;
pub mod xml;

pub use error::{Error, Result};
