//! The device's registry as regedit shows it: a key's path (each part a link), its
//! subkeys and its values with their types, searchable, exportable to `.reg`. The IME's
//! `Win32Apps` state messages are decoded beside their JSON ("state message magic"):
//! ComplianceState 1 reads Installed, EnforcementState 1000 Succeeded, and so on.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{device_link, page, path_part};
use super::Shared;

/// `?key=` (a path, hive first) and `?q=` (text to search keys and values for).
#[derive(Debug, Default, Deserialize)]
pub struct RegistryQuery {
    key: Option<String>,
    q: Option<String>,
}

fn key_link(device: &str, key: &str) -> String {
    format!("{}/registry?key={}", device_link(device), path_part(key))
}

/// `GET /devices/{name}/registry`.
pub async fn registry(
    State(world): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<RegistryQuery>,
) -> Response {
    let world = world.lock().await;
    let Ok(agent) = world.device(&name) else {
        return super::not_found(format!("no device named {name}"));
    };
    let reg = &agent.device().registry;
    let key = query
        .key
        .as_deref()
        .and_then(|k| reg.canonical(k))
        .filter(|k| reg.key_exists(k));
    let link = device_link(&name);
    let body = html! {
        h1 { "Registry" }
        form.search method="get" action=(format!("{link}/registry")) {
            input name="q" placeholder="Search keys and values" value=[query.q.as_deref()];
            button type="submit" { "Search" }
            a.button href=(format!("{link}/registry.reg{}", key.as_deref().map(|k| format!("?key={}", path_part(k))).unwrap_or_default())) { "Export .reg" }
        }
        @if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
            (search_results(&name, &reg.export_reg(None), q))
        } @else {
            @match &key {
                None => ul.keys {
                    @for hive in ["HKEY_LOCAL_MACHINE", "HKEY_USERS"] {
                        li { a href=(key_link(&name, hive)) { (hive) } }
                    }
                },
                Some(key) => (key_view(&name, reg, key)),
            }
        }
    };
    page(
        "Registry",
        &[
            (name.clone(), link.clone()),
            ("Registry".into(), format!("{link}/registry")),
        ],
        body,
    )
    .into_response()
}

fn key_view(device: &str, reg: &agent::device::Registry, key: &str) -> Markup {
    let parts: Vec<&str> = key.split('\\').collect();
    let values = reg.values(key);
    html! {
        p.path #key-path {
            @for (i, part) in parts.iter().enumerate() {
                @if i > 0 { "\\" }
                a href=(key_link(device, &parts[..=i].join("\\"))) { (part) }
            }
        }
        div.registry {
            ul.keys #subkeys {
                @for sub in reg.subkeys(key) {
                    li { a href=(key_link(device, &format!("{key}\\{sub}"))) { (sub) } }
                }
            }
            table #values {
                thead { tr { th { "Name" } th { "Type" } th { "Data" } } }
                tbody {
                    @for (name, value) in &values {
                        tr {
                            td { (if name.is_empty() { "(Default)" } else { name }) }
                            td { (value.type_name()) }
                            td {
                                code { (value.to_text()) }
                                (decoded(&value.to_text()))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A state message's numbers by name, when the data is one.
fn decoded(data: &str) -> Markup {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(data) else {
        return html! {};
    };
    use agent::ime::states;
    let named: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| {
            let n = v.as_i64()?;
            let name = match k.as_str() {
                "ComplianceState" => states::compliance(n),
                "EnforcementState" => states::enforcement(n),
                "DesiredState" => states::desired(n),
                "Applicability" => states::applicability(n),
                _ => return None,
            };
            Some((k.clone(), format!("{n} = {name}")))
        })
        .collect();
    html! {
        @if !named.is_empty() {
            dl.decoded {
                @for (k, v) in &named { dt { (k) } dd { (v) } }
            }
        }
    }
}

/// The keys whose path or values contain `q` (case-insensitive), from the `.reg` text.
fn search_results(device: &str, export: &str, q: &str) -> Markup {
    let needle = q.to_lowercase();
    let mut hits: Vec<&str> = Vec::new();
    let mut current: Option<&str> = None;
    for line in export.lines() {
        if let Some(path) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(path);
            if path.to_lowercase().contains(&needle) {
                hits.push(path);
            }
        } else if let Some(path) = current {
            if line.to_lowercase().contains(&needle) && hits.last() != Some(&path) {
                hits.push(path);
            }
        }
    }
    html! {
        p { (hits.len()) " key(s) match " code { (q) } }
        ul.keys #search-results {
            @for path in hits { li { a href=(key_link(device, path)) { (path) } } }
        }
    }
}

/// `GET /devices/{name}/registry.reg[?key=]`: regedit's export format, UTF-16LE.
pub async fn export(
    State(world): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<RegistryQuery>,
) -> Response {
    let world = world.lock().await;
    let Ok(agent) = world.device(&name) else {
        return super::not_found(format!("no device named {name}"));
    };
    let bytes = agent
        .device()
        .registry
        .export_reg_utf16(query.key.as_deref());
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-16".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.reg\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
