//! A journal made readable: one line per event that matters to a person, in order.

use std::collections::BTreeMap;

use serde_json::Value;
use server::journal::Entry;

fn s<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(n).collect::<String>())
    }
}

/// What an event says, in a few words; `None` for the ones a timeline leaves out
/// (raw messages, deliveries, LoginStatus alerts).
pub fn describe(e: &Entry) -> Option<String> {
    let p = &e.payload;
    Some(match e.kind.as_str() {
        "enrolled" => format!(
            "enrolled ({}) by {}, certificate {}",
            s(p, "requestType"),
            s(p, "user"),
            short(s(p, "thumbprint"), 8)
        ),
        "refused" => format!(
            "{} refused: {} {}",
            s(p, "endpoint"),
            s(p, "code"),
            s(p, "reason")
        ),
        "session_started" => return None,
        "session_ended" => format!(
            "check-in (session {}) {}",
            s(p, "sessionId"),
            s(p, "outcome")
        ),
        "message_in" | "message_out" | "command_delivered" => return None,
        "command_queued" => format!(
            "queued {} {} ({})",
            s(p, "verb"),
            s(p, "target"),
            s(p, "origin")
        ),
        "command_status" => format!(
            "{} {} -> {}",
            s(p, "verb"),
            s(p, "target"),
            p.get("status").unwrap_or(&Value::Null)
        ),
        "command_result" => {
            let items = p
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let shown: Vec<String> = items
                .iter()
                .take(3)
                .map(|i| format!("{} = {}", s(i, "uri"), short(s(i, "data"), 40)))
                .collect();
            format!("results: {}", shown.join(", "))
        }
        "alert" if s(p, "alertType") == "com.microsoft/MDM/LoginStatus" => return None,
        "alert" => format!(
            "alert {} {} from {}: {}",
            s(p, "code"),
            s(p, "alertType"),
            s(p, "source"),
            s(p, "data")
        ),
        "ime_install" => {
            let code = p
                .get("code")
                .and_then(Value::as_i64)
                .map(|c| format!(" (code {c})"))
                .unwrap_or_default();
            format!("IME {} {}{code}", s(p, "version"), s(p, "state"))
        }
        other => format!("{other} {}", short(&p.to_string(), 100)),
    })
}

/// Renders events as lines: `YYYY-MM-DD HH:MM:SS  DEVICE  what happened`. Device ids
/// are shown by name where `names` knows them.
pub fn render(events: &[Entry], names: &BTreeMap<String, String>) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let what = describe(e)?;
            let at = e.at.replace('T', " ");
            let at = at.get(..19).unwrap_or(&at);
            let device = names
                .get(&e.device)
                .cloned()
                .unwrap_or_else(|| short(&e.device, 15));
            Some(format!("{at}  {device:<15}  {what}"))
        })
        .collect()
}
