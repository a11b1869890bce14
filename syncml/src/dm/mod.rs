//! SyncML DM 1.2 (OMA-DM) as Windows speaks it: the message model, its XML codec, the
//! status and alert codes, a builder for server replies and the MD5 digest credential.

mod builder;
mod codec;
mod codes;
mod digest;
mod model;

pub use builder::ReplyBuilder;
pub use codes::{AlertCode, StatusCode};
pub use digest::{md5_credential, AUTH_MD5};
pub use model::*;

/// The `xmlns` of the `SyncML` root.
pub const SYNCML_NS: &str = "SYNCML:SYNCML1.2";
/// The namespace of `Meta` children.
pub const METINF_NS: &str = "syncml:metinf";
/// The HTTP content type of SyncML DM messages.
pub const CONTENT_TYPE: &str = "application/vnd.syncml.dm+xml";
