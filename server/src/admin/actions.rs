//! Managed-device actions as Graph offers them (`POST .../managedDevices/{id}/syncDevice`,
//! `rebootNow`, `shutDown`, `retire`, `wipe`, `remoteLock`): journalled (`device_action`) before the
//! 204, then carried to the device by a push ([`crate::push`]). Retire, wipe and remote
//! lock are commands the push makes the device fetch ([`crate::lifecycle`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use crate::api_error::ApiError;
use crate::journal::Event;
use crate::lifecycle::Ending;
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
        .route(
            "/beta/deviceManagement/managedDevices/{id}/shutDown",
            post(|state, id| act(state, id, Push::ShutDown)),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/retire",
            post(|state, id| command(state, id, Some(Ending::Retire))),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/wipe",
            post(|state, id| command(state, id, Some(Ending::Wipe))),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/remoteLock",
            post(|state, id| command(state, id, None)),
        )
}

/// Retire, wipe (`Some`) or remote lock (`None`): the command queued, then a push.
async fn command(
    State(state): State<Shared>,
    Path(id): Path<String>,
    ending: Option<Ending>,
) -> Result<StatusCode, ApiError> {
    let action = ending.map_or("remoteLock", Ending::as_str);
    journalled(&state, &id, action).await?;
    match ending {
        Some(ending) => crate::lifecycle::request(&state, &id, ending).await?,
        None => crate::lifecycle::request_lock(&state, &id).await?,
    }
    state.push(&id, Push::Sync);
    Ok(StatusCode::NO_CONTENT)
}

async fn act(
    State(state): State<Shared>,
    Path(id): Path<String>,
    push: Push,
) -> Result<StatusCode, ApiError> {
    journalled(&state, &id, push.action()).await?;
    state.push(&id, push);
    Ok(StatusCode::NO_CONTENT)
}

/// The device exists, and the action on it is in the journal.
async fn journalled(state: &Shared, id: &str, action: &str) -> Result<(), ApiError> {
    if state.store.device(id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no managed device {id}"),
        ));
    }
    let event = Event::DeviceAction {
        action: action.into(),
    };
    state.journal.record(id, &event).await?;
    Ok(())
}
