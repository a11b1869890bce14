//! The Tenantless management service: what a Windows device enrolls into and checks in
//! with, and what an administrator (or a test) drives.
//!
//! - [`enroll`]: MS-MDE2 discovery, policy and enrollment, with the [`pki`] CA.
//! - [`omadm`]: OMA-DM management sessions and per-device command queues.
//! - [`ime`]: delivering the IME through the EnterpriseDesktopAppManagement CSP.
//! - [`admin`]: the admin API in Microsoft Graph's shapes, and the journal's HTTP view.
//! - [`journal`] and [`storage`]: what happened, kept in SQLite or PostgreSQL.
//! - [`app`]: starting and stopping a server; [`clock`]: time as an input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api_error;
pub mod app;
pub mod apps;
pub mod clock;
pub mod config;
pub mod console;
pub mod directory;
pub mod enroll;
pub mod health;
pub mod ime;
pub mod inventory;
pub mod journal;
pub mod lifecycle;
pub mod odata;
pub mod omadm;
pub mod pki;
pub mod probe;
pub mod push;
pub mod scripts;
pub mod secret;
pub mod state;
pub mod storage;
pub mod tls;
pub mod worldclock;

pub use app::{start, RunningServer, StartError};
pub use config::Config;
