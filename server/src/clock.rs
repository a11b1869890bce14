//! Time as an input. The server stamps everything with the time of the [`Clock`] it is
//! given; [`SystemClock`] is the one place that reads the system time.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// Where the server's "now" comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current time of the world the server lives in.
    fn now(&self) -> DateTime<Utc>;

    /// Moves the clock forward; false for clocks that only follow real time.
    fn advance(&self, _by: Duration) -> bool {
        false
    }

    /// How the clock runs: `real`, `manual` or `scaled:N`.
    fn mode(&self) -> String {
        "real".into()
    }

    /// Sets the time, backwards too (a testbed starting a new world); false for clocks
    /// that only follow real time or run by themselves.
    fn set(&self, _to: DateTime<Utc>) -> bool {
        false
    }
}

/// Real time: the only reader of the system clock in the server.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        DateTime::from_timestamp(since_epoch.as_secs() as i64, since_epoch.subsec_nanos())
            .unwrap_or_default()
    }
}

/// A clock that moves only when told to: for tests and the testbed's world.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn advance(&self, by: Duration) -> bool {
        ManualClock::advance(self, by);
        true
    }

    fn mode(&self) -> String {
        "manual".into()
    }

    fn set(&self, to: DateTime<Utc>) -> bool {
        ManualClock::set(self, to);
        true
    }
}

/// World time running `factor` times faster than real time from `start`, and
/// advanceable like a manual clock (for labs a person watches at, say, 60x).
#[derive(Debug)]
pub struct ScaledClock {
    real_origin: DateTime<Utc>,
    world_origin: DateTime<Utc>,
    factor: f64,
    offset: Mutex<Duration>,
}

impl ScaledClock {
    /// A clock that reads `start` now and runs `factor` times real time.
    pub fn new(start: DateTime<Utc>, factor: f64) -> Self {
        ScaledClock {
            real_origin: SystemClock.now(),
            world_origin: start,
            factor,
            offset: Mutex::new(Duration::zero()),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = SystemClock.now() - self.real_origin;
        let scaled = Duration::milliseconds((real.num_milliseconds() as f64 * self.factor) as i64);
        self.world_origin + scaled + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn advance(&self, by: Duration) -> bool {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
        true
    }

    fn mode(&self) -> String {
        format!("scaled:{}", self.factor)
    }
}

/// Builds a clock from `real`, `manual` or `scaled:N`, starting at `start` (manual and
/// scaled clocks; default: the real time now).
pub fn from_spec(
    spec: &str,
    start: Option<DateTime<Utc>>,
) -> Result<std::sync::Arc<dyn Clock>, String> {
    let start = start.unwrap_or_else(|| SystemClock.now());
    match spec.trim() {
        "real" => Ok(std::sync::Arc::new(SystemClock)),
        "manual" => Ok(std::sync::Arc::new(ManualClock::new(start))),
        other => match other
            .strip_prefix("scaled:")
            .and_then(|f| f.parse::<f64>().ok())
        {
            Some(f) if f > 0.0 => Ok(std::sync::Arc::new(ScaledClock::new(start, f))),
            _ => Err(format!("--clock {other:?}: use real, manual or scaled:N")),
        },
    }
}

/// Formats a time as stored and shown: RFC 3339, UTC, milliseconds (sorts as text).
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a time written by [`format()`] (or any RFC 3339 time).
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_from_their_spec() {
        let start = parse("2026-01-01T00:00:00Z").unwrap();
        let manual = from_spec("manual", Some(start)).unwrap();
        assert_eq!(manual.now(), start);
        assert!(manual.advance(Duration::hours(2)));
        assert_eq!(manual.now(), start + Duration::hours(2));
        assert_eq!(manual.mode(), "manual");
        let scaled = from_spec("scaled:60", Some(start)).unwrap();
        assert!(scaled.now() >= start && scaled.now() < start + Duration::hours(1));
        assert!(scaled.advance(Duration::days(1)));
        assert!(scaled.now() >= start + Duration::days(1));
        assert!(!from_spec("real", None).unwrap().advance(Duration::hours(1)));
        assert!(from_spec("scaled:0", None).is_err());
        assert!(from_spec("fast", None).is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = parse("2026-01-01T00:00:00Z").unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::hours(25));
        assert_eq!(format(clock.now()), "2026-01-02T01:00:00.000Z");
    }
}
