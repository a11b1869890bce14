//! The world view and a device's page.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;
use server::journal::{Entry, Filter};

use super::layout::{self, device_link, page, time};
use super::Shared;
use crate::world::{AdminBody, World};

/// A device's journal (every event the server recorded for it), oldest first.
pub(super) async fn device_events(world: &World, name: &str) -> Option<Vec<Entry>> {
    let id = world.device_id(name).ok()?;
    world
        .journal()
        .filter(Filter::default().device(&id))
        .events()
        .await
        .ok()
}

/// The latest payload of each `key` among events of `kind`.
fn latest<'a>(events: &'a [Entry], kind: &str, key: &str) -> BTreeMap<String, &'a Value> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (text(&e.payload, key).to_owned(), &e.payload))
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// How many devices one page of the world view lists.
pub const DEVICES_PER_PAGE: usize = 50;

/// `?page=` (from 0).
#[derive(Debug, Default, serde::Deserialize)]
pub struct WorldQuery {
    page: Option<usize>,
}

/// `GET /`: the devices (a page of them: a fleet has thousands) and the clock.
pub async fn world(State(shared): State<Shared>, Query(query): Query<WorldQuery>) -> Response {
    let world = shared.lock().await;
    let names = world.device_names();
    let pages = names.len().div_ceil(DEVICES_PER_PAGE).max(1);
    let page_no = query.page.unwrap_or(0).min(pages - 1);
    let mut rows = Vec::new();
    for name in names
        .iter()
        .skip(page_no * DEVICES_PER_PAGE)
        .take(DEVICES_PER_PAGE)
    {
        let events = device_events(&world, name).await.unwrap_or_default();
        rows.push(device_row(&world, name, &events));
    }
    let now = world.now().format("%Y-%m-%d %H:%M:%S").to_string();
    let playing = shared.playing();
    drop(world);
    layout::refreshing_page(
        "World",
        &[],
        html! {
            h1 { "World" }
            p.links { a href="/apps" { "Apps" } " · " a href="/journal" { "Journal" } }
            section.clock {
                span { "World time " strong #clock { (now) } }
                @if playing {
                    span #playing { "playing, a minute every second" }
                    form method="post" action="/clock/pause" { button #pause type="submit" { "Pause" } }
                } @else {
                    form method="post" action="/clock/play" { button #play type="submit" { "Play" } }
                    form method="post" action="/clock/step" {
                        button #step type="submit" title="To the next moment a device has something to do" { "Step" }
                    }
                    form method="post" action="/clock/advance" {
                        label { "Advance by " input name="by" value="1h" size="6"; }
                        button type="submit" { "Advance" }
                    }
                }
            }
            table #devices {
                thead { tr {
                    th { "Device" } th { "User" } th { "IME" } th { "Last check-in" }
                    th { "Apps" } th { "Scripts" } th { "Remediations" } th { "Client health" }
                } }
                tbody { @for row in &rows { (row) } }
            }
            @if pages > 1 {
                nav.pages {
                    @if page_no > 0 { a #previous-page href=(format!("/?page={}", page_no - 1)) { "Previous" } }
                    span { "Page " (page_no + 1) " of " (pages) ", " (names.len()) " devices" }
                    @if page_no + 1 < pages { a #next-page href=(format!("/?page={}", page_no + 1)) { "Next" } }
                }
            }
        },
        playing.then_some(2),
    )
    .into_response()
}

fn device_row(world: &World, name: &str, events: &[Entry]) -> Markup {
    let Ok(agent) = world.device(name) else {
        return html! {};
    };
    let state = agent.state();
    let apps = latest(events, "app_state_changed", "appId");
    let installed = apps
        .values()
        .filter(|p| p["newCompliance"].as_i64() == Some(1))
        .count();
    let scripts = latest(events, "script_result", "policyId");
    let scripts_ok = scripts
        .values()
        .filter(|p| text(p, "result") == "Success")
        .count();
    let remediations = latest(events, "remediation_result", "policyId");
    let health = events.iter().rev().find(|e| e.kind == "health_report");
    html! {
        tr {
            td { a.device href=(device_link(name)) { (name) } }
            td { (agent.device().profile.user_principal_name) }
            td {
                @if state.ime.installed {
                    (state.ime.version) " " (if state.ime.running { "running" } else { "stopped" })
                } @else { span.muted { "not installed" } }
            }
            td { @match &state.last_session {
                Some(s) => (s.at.format("%Y-%m-%d %H:%M:%S")),
                None => span.muted { "never" },
            } }
            td { (installed) " of " (apps.len()) " installed" }
            td { (scripts_ok) " of " (scripts.len()) " succeeded" }
            td { (remediations.len()) }
            td { @match health {
                Some(h) if h.payload["serviceWasRunning"] == true => "healthy",
                Some(h) if h.payload["restarted"] == true => "remediated",
                Some(_) => "unhealthy",
                None => span.muted { "no report" },
            } }
        }
    }
}

/// `?at=`: a moment to mark on the timeline (a log record's time); `?from=&to=`: the
/// part of time the timeline shows.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DeviceQuery {
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /devices/{name}`: the device, its week as a timeline, its apps and sessions.
pub async fn device(
    State(world): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<DeviceQuery>,
) -> Response {
    let world = world.lock().await;
    let (Ok(agent), Some(events)) = (world.device(&name), device_events(&world, &name).await)
    else {
        return super::not_found(format!("no device named {name}"));
    };
    let app_names = app_names(&world).await;
    let state = agent.state();
    let profile = &agent.device().profile;
    let link = device_link(&name);
    let time = |t: &Option<String>| t.as_deref().and_then(server::clock::parse);
    let links = super::timeline_svg::Links {
        logs: Some(format!("{link}/logs")),
        at: time(&query.at),
        page: Some(link.clone()),
        window: time(&query.from).zip(time(&query.to)),
    };
    let timeline = timeline(agent, &events, &app_names, world.now(), &links);
    page(
        &name,
        &[(name.clone(), link.clone())],
        html! {
            h1 { (name) }
            dl.facts {
                dt { "Device id" } dd { code { (profile.device_id) } }
                dt { "User" } dd { (profile.user_principal_name) }
                dt { "Signed in" } dd #signed-in {
                    @for (i, user) in state.users.iter().enumerate() {
                        form.inline method="post" action=(format!("{link}/users/sign-out")) {
                            "Session " (i + 1) ": " (user.upn) " "
                            input type="hidden" name="user" value=(user.upn);
                            button type="submit" title=(format!("Sign {} out", user.upn)) { "Sign out" }
                        }
                    }
                    @if state.users.is_empty() { "nobody" }
                }
                dt { "OS" } dd { (profile.os_version) " " (profile.architecture) }
                dt { "Time zone" } dd #time-zone { (profile.time_zone) " (UTC" (utc_offset(profile.utc_offset_minutes)) ")" }
                dt { "IME" } dd #ime {
                    @if state.ime.installed {
                        (state.ime.version) " " (if state.ime.running { "running" } else { "stopped" })
                    } @else { "not installed" }
                }
                dt { "Next check-in" } dd { @if let Some(at) = state.next_poll { (at.format("%Y-%m-%d %H:%M:%S")) } }
            }
            section.actions {
                @for (action, label) in [("sync", "Sync"), ("syncapp", "Sync apps (syncapp)"), ("restart-ime", "Restart the IME"), ("reboot", "Restart the device")] {
                    form method="post" action=(format!("{link}/actions/{action}")) {
                        button #(format!("action-{action}")) type="submit" { (label) }
                    }
                }
                form method="post" action=(format!("{link}/users/sign-in")) {
                    input #sign-in-user type="email" name="user" required placeholder="bob@contoso.com" aria-label="User principal name";
                    button #action-sign-in type="submit" { "Sign a user in" }
                }
                a.button href=(format!("{link}/registry")) { "Registry" }
                a.button href=(format!("{link}/logs")) { "Logs" }
                a.button href=(format!("{link}/company-portal")) { "Company Portal" }
            }
            h2 #timeline { "Timeline" }
            (timeline)
            h2 { "Apps" }
            (apps_table(&link, &events, &app_names))
            h2 { "Management sessions" }
            (server::console::sessions::table(&link, &events))
        },
    )
    .into_response()
}

/// A device's timeline: the server's journal of it and the device's own logs.
pub(super) fn timeline(
    agent: &agent::Agent,
    events: &[Entry],
    app_names: &BTreeMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
    links: &super::timeline_svg::Links,
) -> Markup {
    let records = crate::logs::records(agent.device(), &crate::logs::LogQuery::default());
    super::timeline_svg::render(events, &records, app_names, now, links)
}

/// Display names of the apps, by id, as the admin API has them.
pub(super) async fn app_names(world: &World) -> BTreeMap<String, String> {
    let (_, answer) = world
        .admin(
            "GET",
            "/beta/deviceAppManagement/mobileApps",
            AdminBody::None,
        )
        .await;
    answer["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (text(a, "id").to_owned(), text(a, "displayName").to_owned()))
        .collect()
}

fn apps_table(link: &str, events: &[Entry], names: &BTreeMap<String, String>) -> Markup {
    let apps = latest(events, "app_state_changed", "appId");
    let at: BTreeMap<&str, &str> = events
        .iter()
        .filter(|e| e.kind == "app_state_changed")
        .map(|e| (text(&e.payload, "appId"), e.at.as_str()))
        .collect();
    html! {
        table #apps {
            thead { tr { th { "App" } th { "Install state" } th { "Enforcement" } th { "Since" } th { "" } } }
            tbody {
                @for (id, p) in &apps {
                    @let compliance = p["newCompliance"].as_i64().unwrap_or(0);
                    @let enforcement = p["newEnforcement"].as_i64().unwrap_or(0);
                    tr {
                        td { (names.get(id).map(String::as_str).unwrap_or(id)) }
                        td { (agent::ime::states::compliance(compliance)) " (" (compliance) ")" }
                        td { (agent::ime::states::enforcement(enforcement)) " (" (enforcement) ")" }
                        td { (time(at.get(id.as_str()).copied().unwrap_or_default())) }
                        td {
                            form method="post" action=(format!("{link}/apps/{}/ripley", layout::path_part(id))) {
                                button.ripley type="submit" title="Delete the app's keys and its GRS key, then sync" { "Ripley" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An offset from UTC as Windows names zones: `+10:00`, `-05:30`, `+00:00`.
fn utc_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_read_as_windows_names_them() {
        assert_eq!(super::utc_offset(600), "+10:00");
        assert_eq!(super::utc_offset(-330), "-05:30");
        assert_eq!(super::utc_offset(0), "+00:00");
    }
}
