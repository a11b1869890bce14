//! Managed-device actions as Graph offers them (`POST .../managedDevices/{id}/syncDevice`
//! and `.../rebootNow`): journalled (`device_action`) before the 204, then carried to
//! the device by a push ([`crate::push`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use crate::api_error::ApiError;
use crate::journal::Event;
use crate::push::Push;
use crate::state::Shared;

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
