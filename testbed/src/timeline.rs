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
        "gateway_call" | "app_report" => return None,
        "app_state_changed" => {
            let num = |k: &str| p.get(k).and_then(Value::as_i64);
            let was = |k: &str| num(k).map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            let error = match num("errorCode") {
                Some(0) | None => String::new(),
                Some(code) => format!(", error 0x{:08X}", code as i32 as u32),
            };
            format!(
                "Win32 app {}: compliance {} -> {}, enforcement {} -> {}{error}",
                short(s(p, "appId"), 8),
                was("oldCompliance"),
                was("newCompliance"),
                was("oldEnforcement"),
                was("newEnforcement")
            )
        }
        "script_result" => format!(
            "script {}: {} (exit {})",
            short(s(p, "policyId"), 8),
            s(p, "result"),
            p.get("errorCode").unwrap_or(&Value::Null)
        ),
        "remediation_result" => format!(
            "remediation {}: detection {}, remediation {}",
            short(s(p, "policyId"), 8),
            s(p, "detectionState"),
            s(p, "remediationState")
        ),
        "health_report" => format!(
            "client health: IME {} {}",
            s(p, "imeVersion"),
            if p.get("restarted") == Some(&Value::Bool(true)) {
                "was stopped; restarted"
            } else {
                "running"
            }
        ),
        "inventory" => {
            let names = |k: &str| {
                p.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            let mut line = format!(
                "{} inventory: {} program(s)",
                s(p, "inventoryType"),
                p.get("programs").unwrap_or(&Value::Null)
            );
            for (label, key) in [("added", "added"), ("removed", "removed")] {
                let list = names(key);
                if !list.is_empty() {
                    line.push_str(&format!("; {label} {list}"));
                }
            }
            line
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
