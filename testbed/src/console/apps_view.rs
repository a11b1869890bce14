//! Apps, scripts and remediations as the admin center shows them, read through the
//! admin API (Graph's shapes): each app's device install statuses, each script's and
//! remediation's device run states, and the Discovered apps aggregate of inventory.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;

use super::layout::{device_link, page, time};
use super::Shared;
use crate::world::{AdminBody, World};

async fn get(world: &World, path: &str) -> Vec<Value> {
    let (_, answer) = world.admin("GET", path, AdminBody::None).await;
    answer["value"].as_array().cloned().unwrap_or_default()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `GET /apps`.
pub async fn apps(State(world): State<Shared>) -> Response {
    let world = world.lock().await;
    let names: BTreeMap<String, String> = crate::scenario::device_ids(&world)
        .into_iter()
        .map(|(name, id)| (id, name))
        .collect();
    let device = |v: &Value, key: &str| -> Markup {
        let id = text(v, key);
        match names.get(id) {
            Some(name) => html! { a href=(device_link(name)) { (name) } },
            None => html! { (id) },
        }
    };
    let mut apps = Vec::new();
    for app in get(&world, "/beta/deviceAppManagement/mobileApps").await {
        let path = format!(
            "/beta/deviceAppManagement/mobileApps/{}/deviceStatuses",
            text(&app, "id")
        );
        let statuses = get(&world, &path).await;
        apps.push((app, statuses));
    }
    let mut scripts = Vec::new();
    for (kind, base) in [
        ("Platform script", server::scripts::platform::PATH),
        ("Remediation", server::scripts::remediation::PATH),
    ] {
        for script in get(&world, base).await {
            let path = format!("{base}/{}/deviceRunStates", text(&script, "id"));
            let states = get(&world, &path).await;
            scripts.push((kind, script, states));
        }
    }
    let discovered = get(&world, "/beta/deviceManagement/detectedApps").await;
    page(
        "Apps",
        &[("Apps".into(), "/apps".into())],
        html! {
            h1 { "Apps" }
            @for (app, statuses) in &apps {
                section.app {
                    h2 { (text(app, "displayName")) " " span.muted { (text(app, "publisher")) } }
                    table.statuses {
                        thead { tr { th { "Device" } th { "User" } th { "Install status" } th { "Error code" } th { "Last sync" } } }
                        tbody {
                            @for s in statuses {
                                tr {
                                    td { (device(s, "deviceId")) }
                                    td { (text(s, "userPrincipalName")) }
                                    td.install-state { (text(s, "installState")) }
                                    td { (s["errorCode"]) }
                                    td { (time(text(s, "lastSyncDateTime"))) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Scripts and remediations" }
            table #scripts {
                thead { tr { th { "Kind" } th { "Name" } th { "Device" } th { "State" } th { "Last update" } } }
                tbody {
                    @for (kind, script, states) in &scripts {
                        @for s in states {
                            tr {
                                td { (kind) }
                                td { (text(script, "displayName")) }
                                td { (device(&s["managedDevice"], "id")) }
                                td { @if s.get("runState").is_some() {
                                    (text(s, "runState"))
                                } @else {
                                    "detection " (text(s, "detectionState")) ", remediation " (text(s, "remediationState"))
                                } }
                                td { (time(text(s, "lastStateUpdateDateTime"))) }
                            }
                        }
                    }
                }
            }
            h2 { "Discovered apps" }
            table #discovered {
                thead { tr { th { "Application" } th { "Version" } th { "Publisher" } th { "Devices" } } }
                tbody {
                    @for d in &discovered {
                        tr {
                            td { (text(d, "displayName")) }
                            td { (text(d, "version")) }
                            td { (text(d, "publisher")) }
                            td { (d["deviceCount"]) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
