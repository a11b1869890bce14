//! The IME's logs as CMTrace shows them: every file and its rolled-over parts merged in
//! time order, warnings and errors highlighted, filtered by file, component and text.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{device_link, page, path_part};
use super::Shared;
use crate::logs::{LogQuery, LOG_FILES};

/// `?file=`, `?component=`, `?q=`, and `?around=` (a time: the records within
/// [`AROUND`] of it, the nearest one in focus; the timeline links here).
#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    file: Option<String>,
    component: Option<String>,
    q: Option<String>,
    around: Option<String>,
}

/// How far either side of `around` the records shown go.
const AROUND: chrono::Duration = chrono::Duration::minutes(15);

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
        agent.device(),
        &LogQuery {
            file: file.clone(),
            grep: non_empty(&query.q),
            ..LogQuery::default()
        },
    );
    let around = query.around.as_deref().and_then(server::clock::parse);
    let shown: Vec<_> = records
        .iter()
        .filter(|r| {
            component
                .as_ref()
                .is_none_or(|c| r.component.eq_ignore_ascii_case(c))
        })
        .filter(|r| around.is_none_or(|at| (r.at - at).abs() <= AROUND))
        .collect();
    let focus = around.and_then(|at| {
        shown
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| (r.at - at).abs())
            .map(|(i, _)| i)
    });
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
            p #log-count {
                (shown.len()) " record(s)"
                @if skipped > 0 { ", the first " (skipped) " not shown" }
                @if let Some(at) = around { " within 15 minutes of " (at.format("%Y-%m-%d %H:%M:%S")) }
            }
            table.log #log {
                thead { tr { th { "Time (UTC)" } th { "File" } th { "Component" } th { "Thread" } th { "Message" } } }
                tbody {
                    @for (i, r) in shown.iter().enumerate().skip(skipped) {
                        @let at = super::timeline_svg::stamp(r.at);
                        tr.(match r.severity { 3 => "error", 2 => "warning", _ => "info" }).focus[focus == Some(i)]
                            id=[(focus == Some(i)).then_some("focus")] data-at=(at) {
                            td.time {
                                a title="On the timeline" href=(format!("{link}?at={}#timeline", path_part(&at))) {
                                    (r.at.format("%Y-%m-%d %H:%M:%S%.3f"))
                                }
                            }
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
