//! The agent reads no clock: every operation takes `now`. This is the one place that
//! reads the system time, for the real-time runner of `tenantless-agent run` and the
//! one-shot commands.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// The system's time: for the real-time runner only.
pub fn system_now() -> DateTime<Utc> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    DateTime::from_timestamp(since_epoch.as_secs() as i64, since_epoch.subsec_nanos())
        .unwrap_or_default()
}
