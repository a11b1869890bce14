//! Remote mode: the server owns the world clock and other processes follow it.
//!
//! `GET /testbed/clock` tells the world time. An agent that follows the clock long-polls
//! `GET /testbed/clock?follower=ID&until=T`, T being the moment it next has work; the
//! answer comes when world time reaches T (or after 20 s, to poll again).
//! `POST /testbed/clock/advance` (`{"by": "24h"}` or `{"to": "..."}`) walks the clock to
//! its target through the followers' due moments, stopping at each until every follower
//! due there has done its work and asked again: every check-in happens at its own world
//! time, as in the in-process world. A follower's long poll also ends when a push
//! (`syncDevice`, `rebootNow`) waits for it; the answer then names them in `pushes`.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::clock;
use crate::state::Shared;

/// How long a long poll waits before answering anyway.
const LONG_POLL: StdDuration = StdDuration::from_secs(20);
/// How long an advance waits at one stop for followers to finish their work.
const STOP_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// The processes following the clock.
#[derive(Debug, Default)]
pub struct Followers {
    /// By follower id: the moment each waits for (`None` while it works).
    waiting: std::sync::Mutex<BTreeMap<String, Option<DateTime<Utc>>>>,
    /// Woken when the clock moves or a follower comes back.
    changed: tokio::sync::Notify,
}

impl Followers {
    fn set(&self, id: &str, until: Option<DateTime<Utc>>) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), until);
        self.changed.notify_waiters();
    }

    /// The earliest moment after `now` a follower waits for, and whether every follower
    /// is waiting for a moment after `now` (none is working or due).
    fn state(&self, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, bool) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let idle = waiting.values().all(|u| u.is_some_and(|t| t > now));
        let next = waiting
            .values()
            .flatten()
            .filter(|t| **t > now)
            .min()
            .copied();
        (next, idle)
    }

    /// A push for a follower: it counts as working (an advance waits for it) until it
    /// comes back. False when it does not follow the clock.
    pub(crate) fn wake(&self, id: &str) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let Some(until) = waiting.get_mut(id) else {
            return false;
        };
        *until = None;
        drop(waiting);
        self.changed.notify_waiters();
        true
    }

    fn forget_busy(&self, now: DateTime<Utc>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|id, u| {
            let keep = u.is_some_and(|t| t > now);
            if !keep {
                tracing::warn!(follower = %id, "a clock follower did not come back; it no longer holds the clock");
            }
            keep
        });
    }
}

/// `GET /testbed/clock` query.
#[derive(Debug, Deserialize)]
pub struct ClockQuery {
    follower: Option<String>,
    until: Option<String>,
    /// Wait (up to the long poll) until at least this many followers are registered.
    followers: Option<usize>,
}

fn clock_json(state: &Shared) -> Value {
    let followers = state
        .followers
        .waiting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len();
    json!({ "now": clock::format(state.now()), "mode": state.clock.mode(), "followers": followers })
}

/// `GET /testbed/clock` on the device listener: anyone may read the time (an agent
/// asks before it enrolls), but only an enrolled device follows the clock, under the
/// id its certificate was issued to: a stranger cannot hold an advance up.
pub async fn get_clock_for_devices(
    State(state): State<Shared>,
    peer: Option<axum::Extension<crate::tls::PeerCertificate>>,
    Query(mut q): Query<ClockQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.follower.is_some() {
        let unknown = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "following the clock needs an enrolled device's certificate",
            )
        };
        let cert = peer
            .and_then(|axum::Extension(p)| p.0)
            .ok_or_else(unknown)?;
        let device = state
            .device_for_thumbprint(&crate::pki::thumbprint(&cert))
            .await?
            .ok_or_else(unknown)?;
        q.follower = Some(device);
    }
    get_clock(State(state), Query(q)).await
}

/// `GET /testbed/clock`: the world time, or (for a follower) a long poll until `until`.
pub async fn get_clock(
    State(state): State<Shared>,
    Query(q): Query<ClockQuery>,
) -> Result<Json<Value>, ApiError> {
    let until = match &q.until {
        Some(t) => Some(clock::parse(t).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("until {t:?} is not an RFC 3339 time"),
            )
        })?),
        None => None,
    };
    let Some(id) = q.follower else {
        if let Some(wanted) = q.followers {
            let enough = || {
                state
                    .followers
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .len()
                    >= wanted
            };
            wait_for(&state, LONG_POLL, None, enough).await;
        }
        return Ok(Json(clock_json(&state)));
    };
    // A follower with nothing due waits for ever (until the long poll ends).
    let wait_for_time = until.unwrap_or(DateTime::<Utc>::MAX_UTC);
    state.followers.set(&id, Some(wait_for_time));
    // A clock that runs by itself reaches `until` without a notification.
    let tick = (state.clock.mode() != "manual").then_some(StdDuration::from_millis(250));
    let due = || state.now() >= wait_for_time || state.pushes.waiting_for(&id);
    if wait_for(&state, LONG_POLL, tick, due).await {
        state.followers.set(&id, None); // it goes to work
    }
    let mut answer = clock_json(&state);
    let pushes: Vec<&str> = state
        .pushes
        .take_for(&id)
        .iter()
        .map(|p| p.action())
        .collect();
    if !pushes.is_empty() {
        answer["pushes"] = json!(pushes);
    }
    Ok(Json(answer))
}

/// Waits (in real time: a network long poll, not world time) until `done` holds or
/// `limit` has passed, checking again at every follower change and, with `tick`, at
/// least that often. Says whether `done` held.
async fn wait_for(
    state: &Shared,
    limit: StdDuration,
    tick: Option<StdDuration>,
    done: impl Fn() -> bool,
) -> bool {
    // Others' requests must commit while this one waits for them.
    state.store.pause_request();
    let give_up = tokio::time::sleep(limit);
    tokio::pin!(give_up);
    loop {
        let changed = state.followers.changed.notified();
        if done() {
            return true;
        }
        let tick = async {
            match tick {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut give_up => return done(),
            _ = changed => {}
            _ = tick => {}
        }
    }
}

/// `POST /testbed/clock/advance` body.
#[derive(Debug, Deserialize)]
pub struct AdvanceRequest {
    by: Option<String>,
    to: Option<String>,
}

/// Parses `90s`, `20m`, `8h`, `7d`, `1h30m`; `None` for anything else, a duration too
/// large to represent included.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        let part = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        }?;
        total = total.checked_add(&part)?;
    }
    number.is_empty().then_some(total)
}

/// The furthest one advance may move the world clock.
pub const MAX_ADVANCE_DAYS: i64 = 3660;

/// `POST /testbed/clock/advance`.
pub async fn advance(
    State(state): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: AdvanceRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("advance: {e}")))?;
    let now = state.now();
    let target = match (&req.by, &req.to) {
        (Some(by), None) => parse_duration(by)
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("by {by:?} is not a duration like 90s, 20m, 8h, 7d"),
                )
            })?,
        (None, Some(to)) => clock::parse(to).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("to {to:?} is not an RFC 3339 time"),
            )
        })?,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give exactly one of by and to",
            ))
        }
    };
    if target < now {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the world clock does not go backwards",
        ));
    }
    if target - now > Duration::days(MAX_ADVANCE_DAYS) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("one advance moves the world clock {MAX_ADVANCE_DAYS} days at most"),
        ));
    }
    if state.clock.mode() == "real" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this server's clock is the real one (start it with --clock manual or scaled:N)",
        ));
    }
    let mut stops = 0usize;
    loop {
        wait_idle(&state).await;
        let now = state.now();
        let (next, _) = state.followers.state(now);
        let stop = next.filter(|t| *t < target).unwrap_or(target);
        if stop > now {
            state.clock.advance(stop - now);
            state.followers.changed.notify_waiters();
            stops += 1;
        }
        if stop >= target {
            wait_idle(&state).await;
            break;
        }
    }
    let mut v = clock_json(&state);
    v["stops"] = json!(stops);
    Ok(Json(v))
}

/// Waits until every follower is waiting for a moment after now (none is due or working).
async fn wait_idle(state: &Shared) {
    let idle = || state.followers.state(state.now()).1;
    let tick = Some(StdDuration::from_millis(250));
    if !wait_for(state, STOP_TIMEOUT, tick, idle).await {
        state.followers.forget_busy(state.now());
    }
}
