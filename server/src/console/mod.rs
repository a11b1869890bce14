//! The lab console's journal-backed views, served by `tenantless-server` at `/console`
//! for remote and compose setups (the world's own console, in the testbed, adds what only
//! a world has: the device's registry, logs, timeline and actions). Server-rendered HTML
//! with the embedded stylesheet and script: the devices, a device's facts and its
//! management sessions, each session in the SyncML viewer, and the journal.
//!
//! Admin authentication, as a browser can give it: HTTP Basic with the admin token as
//! the password (any user name; the browser asks), or the admin API's bearer token.

pub mod layout;
pub mod sessions;
pub mod syncml;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use maud::{html, Markup};
use serde::Deserialize;

use crate::journal::{Entry, Filter};
use crate::state::Shared;
use layout::{device_link, page, path_part, problem, time};

/// The console's stylesheet (light and dark).
pub const CSS: &str = include_str!("console.css");
/// The console's script (timeline zoom, filters).
pub const JS: &str = include_str!("console.js");

/// Where `tenantless-server` serves it.
const ROOT: &str = "/console";
/// Devices on one page of the device list.
const DEVICES_PER_PAGE: usize = 50;
/// The most events a device page or the journal view reads.
const MAX_EVENTS: usize = 20_000;
/// The most events the journal view lists.
const LISTED_EVENTS: usize = 500;

/// The console's routes, behind admin authentication.
pub fn routes(state: Shared) -> Router<Shared> {
    Router::new()
        .route(ROOT, get(devices))
        .route(&format!("{ROOT}/"), get(devices))
        .route(&format!("{ROOT}/devices/{{id}}"), get(device))
        .route(
            &format!("{ROOT}/devices/{{id}}/sessions/{{session}}"),
            get(session),
        )
        .route(&format!("{ROOT}/journal"), get(journal))
        .route(&format!("{ROOT}/assets/console.css"), get(css))
        .route(&format!("{ROOT}/assets/console.js"), get(js))
        .route_layer(middleware::from_fn_with_state(state, authenticated))
}

/// Admin authentication: Basic with the admin token as the password, or the bearer
/// token; otherwise a 401 that makes a browser ask.
async fn authenticated(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            if let Some(token) = v.strip_prefix("Bearer ") {
                return Some(token.to_owned());
            }
            let basic = v.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            text.split_once(':')
                .map(|(_, password)| password.to_owned())
        });
    if given.is_some_and(|token| crate::secret::matches(&token, &state.config.admin_token)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"Tenantless console\", charset=\"UTF-8\"",
        )],
        HTML_ERROR,
        page(
            ROOT,
            "Sign in",
            &[],
            problem("The console needs the admin token: sign in with it as the password."),
            None,
        ),
    )
        .into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

/// Marks a console error page: an HTML page, not made into Graph's error JSON.
const HTML_ERROR: axum::Extension<crate::api_error::ForeignErrorBody> =
    axum::Extension(crate::api_error::ForeignErrorBody);

fn failure(status: StatusCode, what: &str) -> Response {
    (
        status,
        HTML_ERROR,
        page(ROOT, "Not shown", &[], problem(what), None),
    )
        .into_response()
}

fn store_failure(e: impl std::fmt::Display) -> Response {
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("the database: {e}"),
    )
}

/// `?page=`.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    page: Option<usize>,
}

/// The devices, a page at a time, with what the service knows of each.
async fn devices(State(state): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    let all = match state.store.devices().await {
        Ok(d) => d,
        Err(e) => return store_failure(e),
    };
    let compliance = state
        .store
        .all_compliance_states()
        .await
        .unwrap_or_default();
    let pages = all.len().div_ceil(DEVICES_PER_PAGE).max(1);
    let current = q.page.unwrap_or(1).clamp(1, pages);
    let shown = all
        .iter()
        .skip((current - 1) * DEVICES_PER_PAGE)
        .take(DEVICES_PER_PAGE);
    let body = html! {
        h1 { "Devices" }
        p.muted { (all.len()) " enrolled. This is the service's view (the journal and the database); a world's own console adds each device's registry, logs and timeline." }
        table #devices {
            thead { tr { th { "Device" } th { "Id" } th { "User" } th { "IME" } th { "Last sync" } th { "Compliance" } } }
            tbody {
                @for d in shown {
                    @let states = compliance.get(&d.id).map_or(&[][..], Vec::as_slice);
                    tr {
                        td { a href=(device_link(ROOT, &d.id)) { (d.device_name) } }
                        td { code { (d.id) } }
                        td { (d.user_principal_name) }
                        td { (d.ime_version) " " span.muted { (d.ime_state) } }
                        td { (d.last_sync_at.as_deref().map(time).unwrap_or_default()) }
                        td { (crate::scripts::compliance::device_state(states.iter().map(String::as_str))) }
                    }
                }
            }
        }
        @if pages > 1 {
            nav.pages {
                @for n in 1..=pages {
                    @if n == current { span.current { (n) } } @else { a href=(format!("{ROOT}/?page={n}")) { (n) } }
                }
            }
        }
        p { a href=(format!("{ROOT}/journal")) { "The journal" } }
    };
    page(ROOT, "Devices", &[], body, None).into_response()
}

/// A device's journal, oldest first.
async fn device_events(state: &Shared, id: &str) -> Result<Vec<Entry>, Response> {
    state
        .journal
        .select(&Filter::default().device(id), None, MAX_EVENTS)
        .await
        .map_err(store_failure)
}

/// A device: its facts, its sessions and its latest events.
async fn device(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let device = match state.store.device(&id.to_uppercase()).await {
        Ok(Some(d)) => d,
        Ok(None) => return failure(StatusCode::NOT_FOUND, &format!("no device {id}")),
        Err(e) => return store_failure(e),
    };
    let events = match device_events(&state, &device.id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let states: Vec<String> = state
        .store
        .compliance_states(&device.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.state)
        .collect();
    let link = device_link(ROOT, &device.id);
    let body = html! {
        h1 { (device.device_name) }
        dl.facts {
            dt { "Id" } dd #device-id { code { (device.id) } }
            dt { "User" } dd { (device.user_principal_name) }
            dt { "Windows" } dd { (device.os_version) " " (device.os_edition) }
            dt { "Enrolled" } dd { (time(&device.enrolled_at)) }
            dt { "Last sync" } dd { (device.last_sync_at.as_deref().map(time).unwrap_or_default()) }
            dt { "IME" } dd #ime { (device.ime_version) " " span.muted { (device.ime_state) } }
            dt { "Compliance" } dd #compliance { (crate::scripts::compliance::device_state(states.iter().map(String::as_str))) }
        }
        h2 { "Management sessions" }
        (sessions::table(&link, &events))
        h2 { "Latest events" }
        (events_table(events.iter().rev().take(50)))
        p { a href=(format!("{ROOT}/journal?device={}", path_part(&device.id))) { "All of this device's events" } }
    };
    page(
        ROOT,
        &device.device_name,
        &[(device.device_name.clone(), link)],
        body,
        None,
    )
    .into_response()
}

/// A session in the SyncML viewer.
async fn session(State(state): State<Shared>, Path((id, number)): Path<(String, i64)>) -> Response {
    let id = id.to_uppercase();
    let events = match device_events(&state, &id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some(summary) = sessions::sessions(&events)
        .into_iter()
        .find(|s| s.number == number)
    else {
        return failure(
            StatusCode::NOT_FOUND,
            &format!("{id} has no session {number}"),
        );
    };
    let link = device_link(ROOT, &id);
    let title = format!("Session {}", summary.session_id);
    page(
        ROOT,
        &title,
        &[
            (id.clone(), link.clone()),
            (title.clone(), format!("{link}/sessions/{number}")),
        ],
        syncml::session(&summary, &title, &events),
        None,
    )
    .into_response()
}

/// `?device=&kind=`.
#[derive(Debug, Default, Deserialize)]
struct JournalQuery {
    device: Option<String>,
    kind: Option<String>,
}

/// The journal, filtered by device and kind: the latest events first.
async fn journal(State(state): State<Shared>, Query(q): Query<JournalQuery>) -> Response {
    let mut filter = Filter::default();
    if let Some(kind) = q.kind.as_deref().filter(|k| !k.is_empty()) {
        filter = Filter::kind(kind);
    }
    if let Some(device) = q.device.as_deref().filter(|d| !d.is_empty()) {
        filter = filter.device(device);
    }
    let events = match state.journal.select(&filter, None, MAX_EVENTS).await {
        Ok(e) => e,
        Err(e) => return store_failure(e),
    };
    let body = html! {
        h1 { "Journal" }
        form.filter method="get" action=(format!("{ROOT}/journal")) {
            label { "Device " input name="device" value=(q.device.clone().unwrap_or_default()); }
            label { "Kind " input name="kind" value=(q.kind.clone().unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
        p.muted #matched { (events.len()) " events; the latest " (LISTED_EVENTS.min(events.len())) " shown, newest first." }
        (events_table(events.iter().rev().take(LISTED_EVENTS)))
    };
    page(
        ROOT,
        "Journal",
        &[("Journal".into(), format!("{ROOT}/journal"))],
        body,
        None,
    )
    .into_response()
}

/// Events as a table: time, device, kind, payload.
fn events_table<'a>(events: impl Iterator<Item = &'a Entry>) -> Markup {
    html! {
        table.events {
            thead { tr { th { "Time" } th { "Device" } th { "Kind" } th { "Payload" } } }
            tbody {
                @for e in events {
                    tr {
                        td { (time(&e.at)) }
                        td { @if !e.device.is_empty() { a href=(device_link(ROOT, &e.device)) { code { (e.device) } } } }
                        td { (e.kind) }
                        td { code { (payload_text(&e.payload)) } }
                    }
                }
            }
        }
    }
}

/// A payload as one line, raw SyncML left out (the session view shows it).
fn payload_text(payload: &serde_json::Value) -> String {
    let mut shown = payload.clone();
    if let Some(map) = shown.as_object_mut() {
        if map.contains_key("raw") {
            map.insert("raw".into(), "(SyncML: see the session)".into());
        }
    }
    let text = shown.to_string();
    match text.char_indices().nth(400) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
