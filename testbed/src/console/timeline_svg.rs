//! A device's time as an SVG swimlane chart: one lane each for management sessions, IME
//! check-ins, the IME's own installation, each Win32 app (install attempts and
//! reevaluation ticks from the device's AppWorkload.log, the GRS window shaded, state
//! changes from the journal),
//! scripts, remediations, inventories and client health. Every mark carries its detail
//! (`data-detail`, shown on click, and a `title` tooltip).

use std::collections::BTreeMap;

use agent::cmtrace::Record;
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use server::journal::Entry;

/// Width of the lane labels and of the time axis, in SVG units.
const LABEL: f64 = 190.0;
const WIDTH: f64 = 1000.0;
const LANE: f64 = 28.0;
/// How long a failed app stays in the GRS before it is tried again.
const GRS: i64 = 24;

/// One mark on a lane.
struct Mark {
    at: DateTime<Utc>,
    /// Shaded until then (a window), or a point.
    until: Option<DateTime<Utc>>,
    class: &'static str,
    /// Where in the lane's height, 0 (top) to 1: an app's attempts above its state
    /// changes, so neither hides the other.
    height: f64,
    detail: String,
    /// The log file the mark was read from (its records around that time are one click
    /// away).
    log: Option<&'static str>,
}

/// Where a timeline links to, and what it shows.
#[derive(Debug, Default)]
pub struct Links {
    /// The device's logs view (`None` in a report file, which has no server behind it).
    pub logs: Option<String>,
    /// A moment to mark with a cursor (coming from a log record).
    pub at: Option<DateTime<Utc>>,
    /// The page the timeline is on: zoom and pan are links to it with `from` and `to`
    /// (`None`: the whole span, no navigation).
    pub page: Option<String>,
    /// The part of time shown (default: from the first event to now).
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The narrowest window: a minute.
const MIN_SPAN: i64 = 60_000;

/// Zoom presets, narrowest last: a week down to a minute.
const PRESETS: [(&str, i64); 5] = [
    ("Week", 7 * 86_400_000),
    ("Day", 86_400_000),
    ("Hour", 3_600_000),
    ("10 minutes", 600_000),
    ("Minute", 60_000),
];

/// Grid steps, widest first, with their label formats.
const STEPS: [(i64, &str); 8] = [
    (86_400_000, "%a %d"),
    (6 * 3_600_000, "%a %H:%M"),
    (3_600_000, "%H:%M"),
    (15 * 60_000, "%H:%M"),
    (5 * 60_000, "%H:%M"),
    (60_000, "%H:%M"),
    (10_000, "%H:%M:%S"),
    (1_000, "%H:%M:%S"),
];

/// `at` moved by `ms` milliseconds, or `at` itself where that leaves the calendar (a
/// window asked for at the edge of time must not take the console down).
fn plus(at: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
    at.checked_add_signed(Duration::milliseconds(ms))
        .unwrap_or(at)
}

/// Zoom and pan links for a window, centred on the cursor when it is inside it.
fn navigation(links: &Links, from: DateTime<Utc>, to: DateTime<Utc>) -> Markup {
    let Some(page) = &links.page else {
        return html! {};
    };
    let span = (to - from).num_milliseconds();
    let centre = links
        .at
        .filter(|at| *at >= from && *at <= to)
        .unwrap_or(plus(from, span / 2));
    let cursor = links
        .at
        .map(|at| format!("&at={}", super::layout::path_part(&stamp(at))))
        .unwrap_or_default();
    let window = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "{page}?from={}&to={}{cursor}#timeline",
            super::layout::path_part(&stamp(from)),
            super::layout::path_part(&stamp(to))
        )
    };
    let around = |span: i64| {
        let half = span.max(MIN_SPAN) / 2;
        window(plus(centre, -half), plus(centre, half))
    };
    let shift = span / 2;
    html! {
        nav.timeline-zoom {
            a.zoom-in href=(around(span / 4)) { "Zoom in" }
            a.zoom-out href=(around(span * 4)) { "Zoom out" }
            a.earlier href=(window(plus(from, -shift), plus(to, -shift))) { "Earlier" }
            a.later href=(window(plus(from, shift), plus(to, shift))) { "Later" }
            span.muted { "Show:" }
            @for (label, preset) in PRESETS {
                a.preset href=(around(preset)) { (label) }
            }
            a.whole href=(format!("{page}{}#timeline", cursor.replacen('&', "?", 1))) { "All" }
        }
    }
}

struct Lane {
    id: String,
    label: String,
    marks: Vec<Mark>,
}

/// A time as the marks carry it: RFC 3339 to the millisecond, as the logs have it.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn field<'a>(e: &'a Entry, key: &str) -> &'a str {
    e.payload
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

/// A lane of point marks, one per event of `kind` that `detail` describes.
fn journal_lane(
    events: &[Entry],
    id: &str,
    label: &str,
    class: &'static str,
    detail: impl Fn(&Entry) -> Option<String>,
) -> Lane {
    let marks = events
        .iter()
        .filter_map(|e| {
            Some(Mark {
                at: parse(&e.at)?,
                until: None,
                class,
                height: 0.5,
                detail: detail(e)?,
                log: None,
            })
        })
        .collect();
    Lane {
        id: id.into(),
        label: label.into(),
        marks,
    }
}

/// The app id a Win32App log line is about (`... id: <guid>...`).
fn app_in(message: &str) -> Option<&str> {
    let start = message.find("id: ")? + 4;
    let id = message.get(start..start + 36)?;
    (id.chars().filter(|c| *c == '-').count() == 4).then_some(id)
}

/// A reevaluation tick: the reevaluation schedule manager looked at the app's subgraph
/// and processed it (its interval had passed) or skipped it.
fn reevaluation(message: &str) -> Option<(&'static str, &'static str)> {
    let rest = message.strip_prefix(
        "[Win32App][ReevaluationScheduleManager] Subgraph reevaluation interval is ",
    )?;
    if rest.starts_with("expired") {
        Some((
            "reevaluation processed",
            "reevaluation: the interval had passed, the app was evaluated again",
        ))
    } else if rest.starts_with("not expired") {
        Some((
            "reevaluation skipped",
            "reevaluation: within the interval, skipped",
        ))
    } else {
        None
    }
}

/// The IME service starting and stopping (a device restart, a stop by hand, the health
/// check starting it again), from IntuneManagementExtension.log.
fn service_lane(records: &[Record]) -> Lane {
    let marks = records
        .iter()
        .filter(|r| r.file == agent::ime::LOG)
        .filter_map(|r| {
            let (class, what) = match r.message.as_str() {
                agent::ime::lines::EMS_STARTED => ("service-start", "the IME service started"),
                agent::ime::lines::EMS_STOPPED => ("service-stop", "the IME service stopped"),
                _ => return None,
            };
            Some(Mark {
                at: r.at,
                until: None,
                class,
                height: 0.5,
                detail: what.into(),
                log: Some(agent::ime::LOG),
            })
        })
        .collect();
    Lane {
        id: "service".into(),
        label: "IME service".into(),
        marks,
    }
}

/// The lanes of the Win32 apps: attempts and GRS windows from the device's log, state
/// changes from the journal.
fn app_lanes(events: &[Entry], records: &[Record], names: &BTreeMap<String, String>) -> Vec<Lane> {
    let mut lanes: BTreeMap<String, Vec<Mark>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for r in records.iter().filter(|r| r.file == "AppWorkload.log") {
        if let Some(id) = app_in(&r.message) {
            current = Some(id.to_owned());
        }
        let Some(app) = current.clone() else { continue };
        let exit_code = r
            .message
            .strip_prefix("[Win32App] lpExitCode ")
            .and_then(|c| c.trim().parse::<i64>().ok());
        if let Some(code) = exit_code {
            let failed = code != 0;
            lanes.entry(app).or_default().push(Mark {
                at: r.at,
                until: None,
                class: if failed {
                    "attempt failed"
                } else {
                    "attempt succeeded"
                },
                height: 0.3,
                detail: format!("install attempt: exit code {code}"),
                log: Some("AppWorkload.log"),
            });
        } else if let Some(tick) = reevaluation(&r.message) {
            lanes.entry(app).or_default().push(Mark {
                at: r.at,
                until: None,
                class: tick.0,
                height: 0.9,
                detail: tick.1.to_owned(),
                log: Some("AppWorkload.log"),
            });
        } else if r.message.contains("[GRSManager] Saving GRS value") {
            lanes.entry(app).or_default().push(Mark {
                at: r.at,
                until: Some(plus(r.at, GRS * 3_600_000)),
                class: "grs",
                height: 0.5,
                detail: format!("GRS window: not retried for {GRS} hours"),
                log: Some("AppWorkload.log"),
            });
        }
    }
    for e in events.iter().filter(|e| e.kind == "app_state_changed") {
        let Some(at) = parse(&e.at) else { continue };
        let compliance = e.payload["newCompliance"].as_i64().unwrap_or(0);
        let enforcement = e.payload["newEnforcement"].as_i64().unwrap_or(0);
        lanes
            .entry(field(e, "appId").to_owned())
            .or_default()
            .push(Mark {
                at,
                until: None,
                class: "state",
                height: 0.72,
                log: None,
                detail: format!(
                    "{} / {}",
                    agent::ime::states::compliance(compliance),
                    agent::ime::states::enforcement(enforcement)
                ),
            });
    }
    lanes
        .into_iter()
        .map(|(id, mut marks)| {
            // A GRS window ends at the next attempt: its expiry, or sooner when someone
            // cleared it (the Ripley maneuver).
            let attempts: Vec<DateTime<Utc>> = marks
                .iter()
                .filter(|m| m.class.starts_with("attempt"))
                .map(|m| m.at)
                .collect();
            for m in marks.iter_mut().filter(|m| m.class == "grs") {
                if let Some(next) = attempts.iter().find(|a| **a > m.at) {
                    m.until = m.until.map(|u| u.min(*next));
                }
            }
            // Windows under the points, so every point can be clicked.
            marks.sort_by_key(|m| m.until.is_none());
            (id, marks)
        })
        .map(|(id, marks)| Lane {
            label: names.get(&id).cloned().unwrap_or_else(|| id.clone()),
            id: format!("app-{id}"),
            marks,
        })
        .collect()
}

/// The chart, from the device's first event to `now`.
pub fn render(
    events: &[Entry],
    records: &[Record],
    names: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    links: &Links,
) -> Markup {
    let log_link = |m: &Mark| -> Option<String> {
        let base = links.logs.as_ref()?;
        let at = stamp(m.at);
        Some(format!(
            "{base}?file={}&around={}",
            m.log?,
            super::layout::path_part(&at)
        ))
    };
    let of = |kind: &'static str| move |e: &&Entry| e.kind == kind;
    let only =
        |kind: &'static str| -> Vec<Entry> { events.iter().filter(of(kind)).cloned().collect() };
    let mut lanes = vec![
        journal_lane(
            &only("session_started"),
            "sessions",
            "MDM sessions",
            "session",
            |e| Some(format!("management session {}", field(e, "sessionId"))),
        ),
        journal_lane(
            &only("gateway_call"),
            "checkins",
            "IME check-ins",
            "checkin",
            |e| {
                (field(e, "request") == "RequestApplication")
                    .then(|| format!("IME check-in, CheckinReason {}", field(e, "reason")))
            },
        ),
        journal_lane(
            &only("ime_install"),
            "ime",
            "IME installation",
            "ime",
            |e| Some(format!("IME {} {}", field(e, "version"), field(e, "state"))),
        ),
    ];
    lanes.push(service_lane(records));
    lanes.extend(app_lanes(events, records, names));
    lanes.push(journal_lane(
        &only("script_result"),
        "scripts",
        "Platform scripts",
        "script",
        |e| {
            Some(format!(
                "script {}: {}",
                field(e, "policyId"),
                field(e, "result")
            ))
        },
    ));
    lanes.push(journal_lane(
        &only("remediation_result"),
        "remediations",
        "Remediations",
        "remediation",
        |e| {
            Some(format!(
                "remediation {}: detection {}, remediation {}",
                field(e, "policyId"),
                field(e, "detectionState"),
                field(e, "remediationState")
            ))
        },
    ));
    lanes.push(journal_lane(
        &only("inventory"),
        "inventory",
        "Inventory",
        "inventory",
        |e| Some(format!("{} inventory", field(e, "inventoryType"))),
    ));
    lanes.push(journal_lane(
        &only("health_report"),
        "health",
        "Client health",
        "health",
        |e| {
            Some(if e.payload["serviceWasRunning"] == true {
                "client health: IME running".to_owned()
            } else {
                "client health: IME was stopped".to_owned()
            })
        },
    ));

    let first = events.iter().find_map(|e| parse(&e.at)).unwrap_or(now);
    let (start, end) = match links.window {
        Some((from, to)) if (to - from).num_milliseconds() >= MIN_SPAN => (from, to),
        Some((from, _)) => (from, plus(from, MIN_SPAN)),
        // Work a device does takes a moment: its last log records can be a little
        // after the world's now.
        None => {
            let last = lanes
                .iter()
                .flat_map(|l| l.marks.iter().map(|m| m.at))
                .max()
                .unwrap_or(now);
            (first, now.max(last).max(plus(first, MIN_SPAN)))
        }
    };
    let span = (end - start).num_milliseconds() as f64;
    let x = |t: DateTime<Utc>| LABEL + ((t - start).num_milliseconds() as f64 / span) * WIDTH;
    let shown = |m: &Mark| m.until.unwrap_or(m.at) >= start && m.at <= end;
    let height = LANE * (lanes.len() as f64 + 1.0);
    // The widest grid step that still draws a few lines.
    let (step, format) = STEPS
        .iter()
        .copied()
        .find(|(step, _)| span / (*step as f64) >= 3.0)
        .unwrap_or(STEPS[STEPS.len() - 1]);
    let grid: Vec<DateTime<Utc>> = {
        let first_tick = (start.timestamp_millis() / step + 1) * step;
        (0..)
            .map(|i| first_tick + i * step)
            .take_while(|t| *t < end.timestamp_millis())
            .filter_map(DateTime::from_timestamp_millis)
            .take(100)
            .collect()
    };
    html! {
        div.timeline-block {
            (navigation(links, start, end))
            div.timeline-tools {
                span.detail role="status" { "Click a mark for its detail." }
            }
            div.timeline-frame {
                svg.timeline xmlns="http://www.w3.org/2000/svg"
                    viewBox=(format!("0 0 {} {height}", LABEL + WIDTH + 10.0))
                    data-start=(stamp(start)) data-end=(stamp(end)) {
                    @for t in &grid {
                        line.day x1=(x(*t)) x2=(x(*t)) y1="0" y2=(height) {}
                        text.day x=(x(*t) + 2.0) y=(height - 4.0) { (t.format(format)) }
                    }
                    @if let Some(at) = links.at.filter(|at| *at >= start && *at <= end) {
                        line.cursor x1=(x(at)) x2=(x(at)) y1="0" y2=(height) data-at=(stamp(at)) {
                            title { (at.format("%Y-%m-%d %H:%M:%S%.3f")) }
                        }
                    }
                    @for (i, lane) in lanes.iter().enumerate() {
                        @let y = LANE * i as f64;
                        g.lane #(format!("lane-{}", lane.id)) {
                            text.label x="4" y=(y + LANE * 0.65) { (lane.label) }
                            line.axis x1=(LABEL) x2=(LABEL + WIDTH) y1=(y + LANE / 2.0) y2=(y + LANE / 2.0) {}
                            @for m in lane.marks.iter().filter(|m| shown(m)) {
                                @let detail = format!("{}: {}", m.at.format("%Y-%m-%d %H:%M:%S"), m.detail);
                                @match m.until {
                                    None if m.class.starts_with("reevaluation") => rect class=(m.class)
                                        x=(x(m.at) - 1.0) y=(y + LANE * 0.7) width="2" height=(LANE * 0.3)
                                        data-at=(stamp(m.at)) data-detail=(detail) data-log=[log_link(m)] { title { (detail) } },
                                    Some(until) => rect class=(m.class) y=(y + 3.0)
                                        x=(x(m.at.max(start))) width=((x(until.min(end)) - x(m.at.max(start))).max(1.0)) height=(LANE - 6.0)
                                        data-at=(stamp(m.at)) data-until=(stamp(until))
                                        data-detail=(detail) data-log=[log_link(m)] { title { (detail) } },
                                    None => circle class=(m.class) cx=(x(m.at)) cy=(y + LANE * m.height) r="4.5"
                                        data-at=(stamp(m.at)) data-detail=(detail) data-log=[log_link(m)] { title { (detail) } },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
