//! Throttling on purpose: an opt-in fault mode that answers some admin requests 429 or
//! 503 with `Retry-After`, as Graph does under load, so a client's back-off can be
//! tested. Off until `PUT /tenantless/throttling` sets rules; `DELETE` turns it off.
//!
//! A rule names a path (`/deviceManagement/managedDevices`, or a prefix ending in `*`;
//! the version root is ignored), a seeded failure `rate` (0 to 1), the `status` (429 or
//! 503), `retryAfter` seconds and at most how many requests it fails (`limit`). The
//! journal gets `throttled` for each refusal and, when the same request comes again
//! (the same `client-request-id`, or the same method and URL),
//! `throttle_retry` with how long the client waited (real time) and whether that was as
//! long as it was told (`honoured`).

use std::collections::VecDeque;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api_error::ApiError;
use crate::journal::Event;
use crate::state::Shared;

/// The most rules a setting may hold.
const MAX_RULES: usize = 64;
/// The longest `Retry-After`, seconds.
const MAX_RETRY_AFTER: u64 = 3600;
/// How many refused requests are remembered while their retries are awaited.
const MAX_WAITING: usize = 1024;

/// One rule of the fault mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// The path it applies to; a trailing `*` makes it a prefix.
    pub pattern: String,
    /// The share of matching requests refused, 0 to 1.
    #[serde(default = "always")]
    pub rate: f64,
    /// 429 (Too Many Requests) or 503 (Service Unavailable).
    #[serde(default = "too_many")]
    pub status: u16,
    /// The `Retry-After` header, seconds.
    #[serde(default = "one_second")]
    pub retry_after: u64,
    /// At most this many requests are refused (none: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// How many it refused so far.
    #[serde(default, skip_deserializing)]
    pub refused: u64,
}

fn always() -> f64 {
    1.0
}
fn too_many() -> u16 {
    429
}
fn one_second() -> u64 {
    1
}

/// `PUT /tenantless/throttling`'s body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Setting {
    rules: Vec<Rule>,
    /// Seeds the failure draws, so a run repeats.
    #[serde(default)]
    seed: u64,
}

/// The fault mode while it is on.
#[derive(Debug)]
pub struct Throttling {
    rules: Vec<Rule>,
    seed: u64,
    rng: ChaCha8Rng,
    /// Refused requests whose retry is awaited, oldest first.
    waiting: VecDeque<Waiting>,
}

#[derive(Debug)]
struct Waiting {
    /// Who asked: its `client-request-id` (if it sent one), and its method and URL.
    asked: Asked,
    /// When it was refused, real time.
    since: DateTime<Utc>,
    retry_after: u64,
}

/// How a retry is known for the same request: the same `client-request-id`, or else
/// the same method and URL.
#[derive(Debug, Clone)]
struct Asked {
    id: Option<String>,
    line: String,
}

impl Asked {
    fn again(&self, earlier: &Asked) -> bool {
        match (&self.id, &earlier.id) {
            (Some(a), Some(b)) if a == b => true,
            _ => self.line == earlier.line,
        }
    }
}

impl Throttling {
    /// The fault mode a `PUT /tenantless/throttling` body asks for, or why it cannot be.
    pub fn parse(body: &[u8]) -> Result<Throttling, ApiError> {
        let setting: Setting =
            serde_json::from_slice(body).map_err(|e| bad(format!("throttling: {e}")))?;
        if setting.rules.len() > MAX_RULES {
            return Err(bad(format!("at most {MAX_RULES} rules")));
        }
        for rule in &setting.rules {
            if rule.pattern.trim().is_empty() {
                return Err(bad("a rule needs a pattern"));
            }
            if !(0.0..=1.0).contains(&rule.rate) {
                return Err(bad("rate is between 0 and 1"));
            }
            if !matches!(rule.status, 429 | 503) {
                return Err(bad("status is 429 or 503"));
            }
            if rule.retry_after > MAX_RETRY_AFTER {
                return Err(bad(format!(
                    "retryAfter is at most {MAX_RETRY_AFTER} seconds"
                )));
            }
        }
        Ok(Throttling {
            rules: setting.rules,
            seed: setting.seed,
            rng: ChaCha8Rng::seed_from_u64(setting.seed),
            waiting: VecDeque::new(),
        })
    }

    /// Decides a request (`GET /beta/...`) as the middleware would, without a journal:
    /// true when it is refused.
    pub fn refuses(&mut self, method: &str, uri: &str) -> bool {
        let asked = Asked {
            id: None,
            line: format!("{method} {uri}"),
        };
        let path = uri.split('?').next().unwrap_or(uri);
        matches!(
            judge(self, asked, (method, path), &mut Vec::new()),
            Verdict::Refuse { .. }
        )
    }

    fn view(&self) -> Value {
        serde_json::json!({ "seed": self.seed, "rules": self.rules })
    }
}

/// The path without its version root, lower-cased.
fn normalized(path: &str) -> String {
    let rest = path
        .strip_prefix("/beta")
        .or_else(|| path.strip_prefix("/v1.0"))
        .unwrap_or(path);
    rest.trim_end_matches('/').to_ascii_lowercase()
}

fn matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim();
    match pattern.strip_suffix('*') {
        Some(prefix) => normalized(path).starts_with(&normalized(prefix)),
        None => normalized(path) == normalized(pattern),
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// `PUT /tenantless/throttling`: turns the fault mode on with these rules.
pub async fn set(
    State(state): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let throttling = Throttling::parse(&body)?;
    let view = throttling.view();
    *state.throttling() = Some(throttling);
    Ok(Json(view))
}

/// `GET /tenantless/throttling`: the rules and how many each refused (`null`: off).
pub async fn get(State(state): State<Shared>) -> Json<Value> {
    Json(
        state
            .throttling()
            .as_ref()
            .map_or(Value::Null, Throttling::view),
    )
}

/// `DELETE /tenantless/throttling`: off.
pub async fn clear(State(state): State<Shared>) -> StatusCode {
    *state.throttling() = None;
    StatusCode::NO_CONTENT
}

/// What happened to a request under the fault mode.
enum Verdict {
    Pass,
    Refuse { status: u16, retry_after: u64 },
}

/// The fault mode's middleware for the admin routes (after the bearer check, so a
/// stranger's requests are neither refused nor remembered). Its own routes and
/// `/testbed/*` are never throttled.
pub async fn throttle(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/tenantless/throttling") || path.starts_with("/testbed/") {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let asked = Asked {
        id: request
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        line: format!("{method} {}", request.uri()),
    };
    let mut events = Vec::new();
    let verdict = {
        let mut guard = state.throttling();
        match guard.as_mut() {
            None => Verdict::Pass,
            Some(t) => judge(t, asked, (&method, &path), &mut events),
        }
    };
    for event in &events {
        state.journal.note("", event);
    }
    match verdict {
        Verdict::Pass => next.run(request).await,
        Verdict::Refuse {
            status,
            retry_after,
        } => refusal(status, retry_after),
    }
}

/// Notes the retry of a refused request and decides this one, recording what happened.
fn judge(
    t: &mut Throttling,
    asked: Asked,
    (method, path): (&str, &str),
    events: &mut Vec<Event>,
) -> Verdict {
    // A client waits in real time, whatever the world's clock says.
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    if let Some(at) = t.waiting.iter().position(|w| asked.again(&w.asked)) {
        if let Some(w) = t.waiting.remove(at) {
            let waited = (now - w.since).num_milliseconds().max(0);
            events.push(Event::ThrottleRetry {
                method: method.to_owned(),
                path: path.to_owned(),
                waited_ms: waited.unsigned_abs(),
                retry_after: w.retry_after,
                honoured: waited.unsigned_abs() >= w.retry_after.saturating_mul(1000),
            });
        }
    }
    let draw: f64 = t.rng.random();
    let hit = t
        .rules
        .iter_mut()
        .find(|r| matches(&r.pattern, path) && r.limit.is_none_or(|limit| r.refused < limit));
    match hit {
        Some(rule) if draw < rule.rate => {
            rule.refused += 1;
            let (status, retry_after) = (rule.status, rule.retry_after);
            if t.waiting.len() >= MAX_WAITING {
                t.waiting.pop_front();
            }
            t.waiting.push_back(Waiting {
                asked,
                since: now,
                retry_after,
            });
            events.push(Event::Throttled {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                retry_after,
            });
            Verdict::Refuse {
                status,
                retry_after,
            }
        }
        _ => Verdict::Pass,
    }
}

/// Graph's error with `Retry-After`.
fn refusal(status: u16, retry_after: u64) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let mut response = ApiError::new(
        status,
        "The request was throttled on purpose (tenantless throttling). Retry after the time in Retry-After.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_ignore_the_version_root_case_and_a_trailing_slash() {
        assert!(matches(
            "/deviceManagement/managedDevices",
            "/beta/deviceManagement/managedDevices/"
        ));
        assert!(matches(
            "/v1.0/devicemanagement/*",
            "/beta/deviceManagement/managedDevices/x"
        ));
        assert!(!matches(
            "/deviceManagement/managedDevices",
            "/beta/deviceManagement/managedDevices/x"
        ));
        assert!(matches("*", "/beta/anything"));
    }
}
