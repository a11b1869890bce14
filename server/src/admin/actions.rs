//! Managed-device actions as Graph offers them (`POST .../managedDevices/{id}/syncDevice`
//! and `.../rebootNow`), and the push channel that carries them to the device: the
//! stand-in for the Windows Push Notification Service. An action is journalled
//! (`device_action`) before the 204, and waits in the server's memory for the device,
//! as a WNS notification does (one lost in a restart is made up by the device's next
//! scheduled check-in). A world in the same process takes the waiting pushes of its
//! devices at every step ([`crate::state::AppState::take_pushes`]); a device that
//! follows the server's clock (`tenantless-agent --clock server run`) gets them as the
//! answer to its long poll (`crate::worldclock`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use crate::api_error::ApiError;
use crate::journal::Event;
use crate::state::Shared;

/// What a push asks of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Check in now: an OMA-DM session, then the IME.
    Sync,
    /// Restart (then check in).
    Reboot,
}

impl Push {
    /// The Graph action's name.
    pub fn action(self) -> &'static str {
        match self {
            Push::Sync => "syncDevice",
            Push::Reboot => "rebootNow",
        }
    }
}

/// The action routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/beta/deviceManagement/managedDevices/{id}/syncDevice",
            post(|state, id| act(state, id, Push::Sync)),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/rebootNow",
            post(|state, id| act(state, id, Push::Reboot)),
        )
}

async fn act(
    State(state): State<Shared>,
    Path(id): Path<String>,
    push: Push,
) -> Result<StatusCode, ApiError> {
    if state.store.device(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no managed device {id}"),
        ));
    }
    state
        .journal
        .record(
            &id,
            &Event::DeviceAction {
                action: push.action().into(),
            },
        )
        .await?;
    state.push(&id, push);
    Ok(StatusCode::NO_CONTENT)
}
