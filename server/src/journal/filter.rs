//! One filter language for the journal, used by the Rust API, the HTTP API
//! (`/testbed/events`, `/testbed/events/count`, `/testbed/verify`) and scenario files:
//! a JSON object whose keys must all hold.
//!
//! ```json
//! { "device": "LAB-01 id", "kind": "app_state_changed", "since": "2026-11-24T00:00:00Z",
//!   "until": "...", "app": "id", "policy": "id", "state": "installed",
//!   "payload": { "compliance.new": 1, "errorCode": 0 } }
//! ```
//!
//! `app`, `policy` and `state` are shortcuts for the payload fields `appId`,
//! `policyId` and `state`; `payload` keys are dotted paths into the event's fields.
//! Verification counts matching events against an expectation (exactly, at least, at
//! most, never, or a sequence in order) and, when it fails, names the closest events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Entry;
use crate::storage::JournalQuery;

/// Which events to select.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// The device id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The event kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// At or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Shortcut for `payload.appId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Shortcut for `payload.policyId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Shortcut for `payload.state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Payload fields by dotted path, each to equal the given value.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub payload: serde_json::Map<String, Value>,
}

impl Filter {
    /// Events of a kind.
    pub fn kind(kind: &str) -> Self {
        Filter {
            kind: Some(kind.into()),
            ..Filter::default()
        }
    }

    /// Only this device's events.
    pub fn device(mut self, device: &str) -> Self {
        self.device = Some(device.to_uppercase());
        self
    }

    /// Only events whose payload field (dotted path) equals `value`.
    pub fn field(mut self, path: &str, value: impl Into<Value>) -> Self {
        self.payload.insert(path.into(), value.into());
        self
    }

    /// Only events in `[since, until)`.
    pub fn between(mut self, since: &str, until: &str) -> Self {
        self.since = Some(since.into());
        self.until = Some(until.into());
        self
    }

    /// Only events at or after `since`.
    pub fn since(mut self, since: chrono::DateTime<chrono::Utc>) -> Self {
        self.since = Some(crate::clock::format(since));
        self
    }

    /// A time bound as stored times read (`...T11:10:00.000Z`), so that `11:10:00Z` or
    /// `+01:00` offsets compare as the instants they name; other text is kept as given.
    fn bound(t: &Option<String>) -> Option<String> {
        t.as_ref()
            .map(|t| crate::clock::parse(t).map_or_else(|| t.clone(), crate::clock::format))
    }

    /// The part the database can select on.
    pub fn query(&self, limit: i64) -> JournalQuery {
        JournalQuery {
            device: self.device.clone(),
            kind: self.kind.clone(),
            since_time: Self::bound(&self.since),
            until_time: Self::bound(&self.until),
            limit,
            ..JournalQuery::default()
        }
    }

    /// Every criterion, as (description, holds?) for an entry.
    fn criteria(&self, e: &Entry) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        if let Some(d) = &self.device {
            out.push((format!("device = {d}"), e.device.eq_ignore_ascii_case(d)));
        }
        if let Some(k) = &self.kind {
            out.push((format!("kind = {k}"), &e.kind == k));
        }
        if let Some(s) = Self::bound(&self.since) {
            out.push((format!("at >= {s}"), e.at.as_str() >= s.as_str()));
        }
        if let Some(u) = Self::bound(&self.until) {
            out.push((format!("at < {u}"), e.at.as_str() < u.as_str()));
        }
        let shortcut = [
            ("appId", &self.app),
            ("policyId", &self.policy),
            ("state", &self.state),
        ];
        for (path, want) in shortcut {
            if let Some(want) = want {
                out.push((
                    format!("{path} = {want}"),
                    field_equals(&e.payload, path, &Value::String(want.clone())),
                ));
            }
        }
        for (path, want) in &self.payload {
            out.push((
                format!("{path} = {want}"),
                field_equals(&e.payload, path, want),
            ));
        }
        out
    }

    /// True when every criterion holds.
    pub fn matches(&self, e: &Entry) -> bool {
        self.criteria(e).iter().all(|(_, ok)| *ok)
    }

    /// The criteria an entry fails.
    pub fn mismatches(&self, e: &Entry) -> Vec<String> {
        self.criteria(e)
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(c, _)| c)
            .collect()
    }
}

/// A payload field (dotted path) equals a value; numbers compare by value and a string
/// expectation matches a number or boolean written the same way.
fn field_equals(payload: &Value, path: &str, want: &Value) -> bool {
    let mut here = payload;
    for part in path.split('.') {
        match here.get(part) {
            Some(v) => here = v,
            None => return false,
        }
    }
    match (here, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(n), Value::String(s)) => s.trim().parse::<f64>().ok() == n.as_f64(),
        (Value::Bool(b), Value::String(s)) => s.trim() == if *b { "true" } else { "false" },
        _ => here == want,
    }
}

/// What a verification expects of the matching events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Expectation {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many.
    AtLeast(usize),
    /// At most this many.
    AtMost(usize),
    /// None at all.
    Never,
    /// Events matching each filter, in this order (others may come between).
    InOrder(Vec<Filter>),
}

/// An event that came close to matching, and the criteria it missed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NearMiss {
    /// The event.
    pub event: Entry,
    /// What did not hold.
    pub missed: Vec<String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// True when the expectation held.
    pub ok: bool,
    /// Matching events found (for `InOrder`, how many steps were found in order).
    pub found: usize,
    /// A sentence saying what was expected and what was found.
    pub message: String,
    /// When it failed: the closest events and what they missed.
    pub near_misses: Vec<NearMiss>,
}

impl Verification {
    /// Checks `expectation` of `filter` against `events` (oldest first).
    pub fn check(filter: &Filter, expectation: &Expectation, events: &[Entry]) -> Verification {
        let mut checker = Checker::new(filter, expectation);
        for e in events {
            checker.feed(e);
        }
        checker.finish()
    }
}

/// A verification fed one event at a time (oldest first), keeping only counts and the
/// few closest events: a journal of any size is checked in bounded memory.
pub struct Checker<'a> {
    filter: &'a Filter,
    expectation: &'a Expectation,
    /// Events matched; for `InOrder`, steps found so far.
    found: usize,
    /// For `InOrder`: the step looked for now (base and step merged).
    step: Option<Filter>,
    /// The closest events to what is looked for, fewest misses first, then newest.
    closest: Vec<(usize, Entry, Vec<String>)>,
}

/// Near misses shown at most.
const NEAR_MISSES: usize = 3;

impl<'a> Checker<'a> {
    /// A checker of `expectation` for events matching `filter`.
    pub fn new(filter: &'a Filter, expectation: &'a Expectation) -> Self {
        let step = match expectation {
            Expectation::InOrder(steps) => steps.first().map(|s| merge(filter, s)),
            _ => None,
        };
        Checker {
            filter,
            expectation,
            found: 0,
            step,
            closest: Vec::new(),
        }
    }

    /// Takes the next event.
    pub fn feed(&mut self, e: &Entry) {
        if let Expectation::InOrder(steps) = self.expectation {
            let Some(step) = &self.step else {
                return; // every step found
            };
            if step.matches(e) {
                self.found += 1;
                self.step = steps.get(self.found).map(|s| merge(self.filter, s));
                // Near misses are looked for after the last step found.
                self.closest.clear();
            } else {
                let missed = step.mismatches(e);
                self.consider(e, missed);
            }
            return;
        }
        if self.filter.matches(e) {
            self.found += 1;
        } else if self.found == 0 {
            let missed = self.filter.mismatches(e);
            self.consider(e, missed);
        }
    }

    /// Keeps `e` if it is among the closest so far (ties go to the newer event, and
    /// events come oldest first).
    fn consider(&mut self, e: &Entry, missed: Vec<String>) {
        let n = missed.len();
        let at = self.closest.partition_point(|(m, _, _)| *m < n);
        if at < NEAR_MISSES {
            self.closest.insert(at, (n, e.clone(), missed));
            self.closest.truncate(NEAR_MISSES);
        }
    }

    fn near_misses(self) -> Vec<NearMiss> {
        self.closest
            .into_iter()
            .map(|(_, event, missed)| NearMiss { event, missed })
            .collect()
    }

    /// The verification's outcome.
    pub fn finish(self) -> Verification {
        let found = self.found;
        let (ok, wanted) = match self.expectation {
            Expectation::Exactly(n) => (found == *n, format!("exactly {n}")),
            Expectation::AtLeast(n) => (found >= *n, format!("at least {n}")),
            Expectation::AtMost(n) => (found <= *n, format!("at most {n}")),
            Expectation::Never => (found == 0, "no".to_owned()),
            Expectation::InOrder(steps) => {
                let Some(step) = &self.step else {
                    return Verification {
                        ok: true,
                        found,
                        message: format!("all {} steps found in order", steps.len()),
                        near_misses: vec![],
                    };
                };
                let described = serde_json::to_string(step).unwrap_or_default();
                let message = format!(
                    "step {} of {} not found in order: {described}",
                    found + 1,
                    steps.len()
                );
                return Verification {
                    ok: false,
                    found,
                    message,
                    near_misses: self.near_misses(),
                };
            }
        };
        let described = serde_json::to_string(self.filter).unwrap_or_default();
        let message = if ok {
            format!("{found} event(s) matched {described}, as expected ({wanted})")
        } else {
            format!("expected {wanted} event(s) matching {described}, found {found}")
        };
        let near_misses = if ok || found > 0 {
            vec![]
        } else {
            self.near_misses()
        };
        Verification {
            ok,
            found,
            message,
            near_misses,
        }
    }
}

/// A step's criteria added to the base filter's.
fn merge(base: &Filter, step: &Filter) -> Filter {
    let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
    let mut payload = base.payload.clone();
    payload.extend(step.payload.clone());
    Filter {
        device: pick(&base.device, &step.device),
        kind: pick(&base.kind, &step.kind),
        since: pick(&base.since, &step.since),
        until: pick(&base.until, &step.until),
        app: pick(&base.app, &step.app),
        policy: pick(&base.policy, &step.policy),
        state: pick(&base.state, &step.state),
        payload,
    }
}

/// The three events that satisfy the most criteria (fewest misses; latest first on
/// ties).
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: i64, kind: &str, payload: Value) -> Entry {
        Entry {
            seq,
            at: format!("2026-11-24T09:00:{seq:02}.000Z"),
            device: "DEV".into(),
            kind: kind.into(),
            payload,
        }
    }

    fn events() -> Vec<Entry> {
        vec![
            entry(1, "session_started", json!({ "auth": "certificate" })),
            entry(
                2,
                "ime_install",
                json!({ "state": "queued", "version": "1.0" }),
            ),
            entry(
                3,
                "ime_install",
                json!({ "state": "installing", "code": 202 }),
            ),
            entry(4, "ime_install", json!({ "state": "installed", "code": 0 })),
        ]
    }

    #[test]
    fn time_bounds_compare_as_instants_however_they_are_written() {
        // Event 3 is at 09:00:03.000Z; a bound without milliseconds or in another
        // offset names the same instant.
        for since in ["2026-11-24T09:00:03Z", "2026-11-24T10:00:03+01:00"] {
            let f = Filter::kind("ime_install").between(since, "2026-11-24T09:00:04Z");
            assert_eq!(
                Verification::check(&f, &Expectation::Exactly(1), &events()).found,
                1,
                "{since}"
            );
        }
    }

    #[test]
    fn counts_and_expectations() {
        let f = Filter::kind("ime_install");
        assert!(Verification::check(&f, &Expectation::Exactly(3), &events()).ok);
        assert!(Verification::check(&f, &Expectation::AtLeast(2), &events()).ok);
        assert!(!Verification::check(&f, &Expectation::AtMost(2), &events()).ok);
        let installed = Filter {
            state: Some("installed".into()),
            ..Filter::kind("ime_install")
        };
        assert_eq!(
            Verification::check(&installed, &Expectation::Exactly(1), &events()).found,
            1
        );
        assert!(Verification::check(&Filter::kind("nothing"), &Expectation::Never, &events()).ok);
        assert!(
            Filter::kind("ime_install")
                .field("code", "202")
                .matches(&events()[2]),
            "a string matches a number written alike"
        );
        assert!(Filter::kind("ime_install")
            .field("code", 202)
            .matches(&events()[2]));
    }

    #[test]
    fn a_failed_verification_names_the_closest_events() {
        let f = Filter::kind("ime_install").field("state", "failed");
        let v = Verification::check(&f, &Expectation::AtLeast(1), &events());
        assert!(!v.ok);
        assert_eq!(
            v.message,
            r#"expected at least 1 event(s) matching {"kind":"ime_install","payload":{"state":"failed"}}, found 0"#
        );
        assert_eq!(v.near_misses.len(), 3);
        assert_eq!(
            v.near_misses[0].event.seq, 4,
            "latest of the equally close first"
        );
        assert_eq!(v.near_misses[0].missed, [r#"state = "failed""#]);
    }

    #[test]
    fn in_order_finds_steps_in_sequence() {
        let steps = |states: &[&str]| {
            Expectation::InOrder(
                states
                    .iter()
                    .map(|s| Filter::default().field("state", *s))
                    .collect(),
            )
        };
        let base = Filter::kind("ime_install");
        assert!(Verification::check(&base, &steps(&["queued", "installed"]), &events()).ok);
        let wrong = Verification::check(&base, &steps(&["installed", "queued"]), &events());
        assert!(!wrong.ok);
        assert_eq!(wrong.found, 1);
        assert!(wrong.message.starts_with("step 2 of 2 not found in order"));
    }

    #[test]
    fn filters_read_from_json_and_refuse_unknown_keys() {
        let f: Filter =
            serde_json::from_value(json!({ "kind": "alert", "payload": { "data": "0" } })).unwrap();
        assert_eq!(f.kind.as_deref(), Some("alert"));
        assert!(serde_json::from_value::<Filter>(json!({ "knd": "alert" })).is_err());
        let e: Expectation = serde_json::from_value(json!({ "atLeast": 2 })).unwrap();
        assert_eq!(e, Expectation::AtLeast(2));
        let e: Expectation = serde_json::from_value(json!("never")).unwrap();
        assert_eq!(e, Expectation::Never);
    }
}
