//! The IME's logs as CMTrace shows them: every file and its rolled-over parts merged in
//! time order, warnings and errors highlighted, filtered by file, component and text.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{device_link, page};
use super::Shared;
use crate::logs::{LogQuery, LOG_FILES};

/// `?file=`, `?component=`, `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    file: Option<String>,
    component: Option<String>,
    q: Option<String>,
}

/// The most records one page shows (the latest ones).
const MAX_ROWS: usize = 5000;

/// `GET /devices/{name}/logs`.
pub async fn logs(
    State(world): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Response {
    let world = world.lock().await;
    let Ok(agent) = world.device(&name) else {
        return super::not_found(format!("no device named {name}"));
    };
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let file = non_empty(&query.file);
    let component = non_empty(&query.component);
    let records = crate::logs::records(
        &agent.device().drive,
        &LogQuery {
            file: file.clone(),
            grep: non_empty(&query.q),
            ..LogQuery::default()
        },
    );
    let shown: Vec<_> = records
        .iter()
        .filter(|r| {
            component
                .as_ref()
                .is_none_or(|c| r.component.eq_ignore_ascii_case(c))
        })
        .collect();
    let skipped = shown.len().saturating_sub(MAX_ROWS);
    let link = device_link(&name);
    page(
        "Logs",
        &[(name.clone(), link.clone()), ("Logs".into(), format!("{link}/logs"))],
        html! {
            h1 { "Logs" }
            form.search #log-filter method="get" action=(format!("{link}/logs")) {
                select name="file" {
                    option value="" { "All files" }
                    @for f in LOG_FILES {
                        option value=(f) selected[file.as_deref() == Some(f)] { (f) }
                    }
                }
                input name="component" placeholder="Component" value=[component.as_deref()];
                input name="q" placeholder="Text" value=[query.q.as_deref()];
                button type="submit" { "Filter" }
            }
            p #log-count { (shown.len()) " record(s)" @if skipped > 0 { ", the first " (skipped) " not shown" } }
            table.log #log {
                thead { tr { th { "Time (UTC)" } th { "File" } th { "Component" } th { "Thread" } th { "Message" } } }
                tbody {
                    @for r in shown.iter().skip(skipped) {
                        tr.(match r.severity { 3 => "error", 2 => "warning", _ => "info" }) data-at=(r.at.to_rfc3339()) {
                            td.time { (r.at.format("%Y-%m-%d %H:%M:%S%.3f")) }
                            td { (r.file) }
                            td { (r.component) }
                            td { (r.thread) }
                            td.message { (r.message) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
