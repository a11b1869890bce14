//! A management session as SyncMLViewer shows it: each message of the exchange in
//! order, its commands and statuses (with their meanings) in a table, then the message
//! itself, pretty-printed and highlighted. The EnterpriseDesktopAppManagement Exec that
//! carries an MsiInstallJob is marked so it is easy to find.

use maud::{html, Markup};
use syncml::dm::{Command, StatusCode, SyncMl};

use super::layout::time;
use super::sessions::SessionSummary;
use crate::journal::Entry;

/// The session's page body: a heading, then each of its messages.
pub fn session(summary: &SessionSummary<'_>, title: &str, events: &[Entry]) -> Markup {
    let messages: Vec<&Entry> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "message_in" | "message_out"))
        .filter(|e| e.payload["session"].as_i64() == Some(summary.number))
        .collect();
    html! {
        h1 { (title) }
        p { "Started " (time(summary.at)) ", " (summary.messages) " messages, " (summary.outcome) "." }
        @for m in &messages {
            @let incoming = m.kind == "message_in";
            @let raw = m.payload["raw"].as_str().unwrap_or_default();
            section.message.(if incoming { "from-device" } else { "from-server" }) {
                h2 {
                    (if incoming { "Device → server" } else { "Server → device" })
                    " · MsgID " (m.payload["msgId"].as_str().unwrap_or_default())
                    " · " (time(&m.at))
                }
                @match SyncMl::parse(raw.as_bytes()) {
                    Ok(msg) => (commands_table(&msg.body.commands)),
                    Err(e) => p.problem { "Not a SyncML message: " (e.to_string()) },
                }
                details open[!incoming] {
                    summary { "SyncML" }
                    pre.xml { (highlight(&syncml::xml::pretty(raw).unwrap_or_else(|_| raw.to_owned()))) }
                }
            }
        }
    }
}

/// The commands of a message, containers opened, one row each.
fn commands_table(commands: &[Command]) -> Markup {
    let mut rows = Vec::new();
    flatten(commands, &mut rows);
    html! {
        table.commands {
            thead { tr { th { "Command" } th { "CmdID" } th { "Target / reference" } th { "Code" } } }
            tbody {
                @for c in rows {
                    @let job = matches!(c, Command::Exec(_)) && carries_msi_job(c);
                    tr.msi-install-job[job] {
                        td { (c.name()) @if job { " " span.tag { "MsiInstallJob" } } }
                        td { (c.cmd_id()) }
                        td { code { (targets(c)) } }
                        td { @match c {
                            Command::Status(s) => {
                                @let code = s.code().unwrap_or(StatusCode::Other(0));
                                span.status.(if code.is_success() { "ok" } else { "error" }) {
                                    (s.data) " " (code.meaning())
                                }
                            }
                            Command::Alert(a) => (a.data),
                            _ => "",
                        } }
                    }
                }
            }
        }
    }
}

fn flatten<'a>(commands: &'a [Command], out: &mut Vec<&'a Command>) {
    for c in commands {
        out.push(c);
        if let Command::Atomic(inner) | Command::Sequence(inner) = c {
            flatten(&inner.commands, out);
        }
    }
}

fn carries_msi_job(c: &Command) -> bool {
    c.items().iter().any(|i| {
        i.data
            .as_ref()
            .is_some_and(|d| d.as_str().contains("<MsiInstallJob"))
    })
}

/// What a command is about: its items' targets or sources, or for a Status the command
/// it answers.
fn targets(c: &Command) -> String {
    if let Command::Status(s) = c {
        return format!("{} {} (msg {})", s.cmd, s.cmd_ref, s.msg_ref);
    }
    c.items()
        .iter()
        .filter_map(|i| i.target.as_ref().or(i.source.as_ref()))
        .map(|l| l.loc_uri.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// XML text with its tags marked for colour.
fn highlight(xml: &str) -> Markup {
    let mut parts: Vec<(bool, &str)> = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        if open > 0 {
            parts.push((false, &rest[..open]));
        }
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c + 1);
        parts.push((true, &rest[open..close]));
        rest = &rest[close..];
    }
    if !rest.is_empty() {
        parts.push((false, rest));
    }
    html! {
        @for (tag, text) in parts {
            @if tag { span.t { (text) } } @else { (text) }
        }
    }
}
