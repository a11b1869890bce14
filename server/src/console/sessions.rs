//! A device's management sessions as its journal tells them, and the table that lists
//! them.

use maud::{html, Markup};
use serde_json::Value;

use super::layout::time;
use crate::journal::Entry;

/// One management session as the journal tells it.
pub struct SessionSummary<'a> {
    /// The session's number (the journal's `session`), unique on the server.
    pub number: i64,
    /// Its SessionID.
    pub session_id: &'a str,
    /// When it started.
    pub at: &'a str,
    /// How it ended.
    pub outcome: &'a str,
    /// Messages exchanged.
    pub messages: usize,
    /// It carried the EnterpriseDesktopAppManagement MsiInstallJob.
    pub installs_ime: bool,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The device's sessions, in order.
pub fn sessions(events: &[Entry]) -> Vec<SessionSummary<'_>> {
    let mut out: Vec<SessionSummary<'_>> = events
        .iter()
        .filter(|e| e.kind == "session_started")
        .map(|e| SessionSummary {
            number: e.payload["session"].as_i64().unwrap_or(0),
            session_id: text(&e.payload, "sessionId"),
            at: &e.at,
            outcome: "",
            messages: 0,
            installs_ime: false,
        })
        .collect();
    for e in events {
        let number = e.payload["session"].as_i64().unwrap_or(0);
        let Some(s) = out.iter_mut().find(|s| s.number == number) else {
            continue;
        };
        match e.kind.as_str() {
            "message_in" | "message_out" => {
                s.messages += 1;
                s.installs_ime |= text(&e.payload, "raw").contains("MsiInstallJob");
            }
            "session_ended" => s.outcome = text(&e.payload, "outcome"),
            _ => {}
        }
    }
    out
}

/// The sessions as a table, each linking to `{link}/sessions/{number}`.
pub fn table(link: &str, events: &[Entry]) -> Markup {
    html! {
        table #sessions {
            thead { tr { th { "Session" } th { "Started" } th { "Messages" } th { "Outcome" } th { "" } } }
            tbody {
                @for s in sessions(events) {
                    tr {
                        td { a href=(format!("{link}/sessions/{}", s.number)) { "Session " (s.session_id) } }
                        td { (time(s.at)) }
                        td { (s.messages) }
                        td { (s.outcome) }
                        td { @if s.installs_ime { span.tag { "installs the IME (MsiInstallJob)" } } }
                    }
                }
            }
        }
    }
}
