//! A management session as SyncMLViewer shows it (rendered by
//! [`server::console::syncml`], which `tenantless-server`'s console shares).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::layout::{device_link, page};
use super::views::device_events;
use super::Shared;

/// `GET /devices/{name}/sessions/{session}`.
pub async fn session(
    State(world): State<Shared>,
    Path((name, session)): Path<(String, i64)>,
) -> Response {
    let world = world.lock().await;
    let Some(events) = device_events(&world, &name).await else {
        return super::not_found(format!("no device named {name}"));
    };
    let summary = server::console::sessions::sessions(&events)
        .into_iter()
        .find(|s| s.number == session);
    let Some(summary) = summary else {
        return super::not_found(format!("{name} has no session {session}"));
    };
    let link = device_link(&name);
    let title = format!("Session {}", summary.session_id);
    page(
        &title,
        &[
            (name.clone(), link.clone()),
            (title.clone(), format!("{link}/sessions/{session}")),
        ],
        server::console::syncml::session(&summary, &title, &events),
    )
    .into_response()
}
