//! Which device is due next: the world's index of its devices' next due moments, so a
//! step of an advance need not ask every device (a fleet has a thousand, and most
//! moments of its day, each device's health evaluation, concern one of them).
//!
//! A device's moment changes only when it runs or is changed by hand; the world marks
//! it then ([`DueIndex::touch`]) and the index asks it again before the next look-up.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

/// The devices' next due moments, in time order.
#[derive(Debug, Default)]
pub(crate) struct DueIndex {
    /// Each device with something due, and when.
    due: HashMap<String, DateTime<Utc>>,
    /// The same, ordered by time (then name).
    order: BTreeSet<(DateTime<Utc>, String)>,
    /// Devices whose moment may have changed since it was read.
    stale: BTreeSet<String>,
}

impl DueIndex {
    /// The device may have a new due moment (it ran, was changed, created or removed).
    pub(crate) fn touch(&mut self, name: &str) {
        self.stale.insert(name.to_owned());
    }

    /// Reads the moments of the devices touched since the last refresh; `next_due`
    /// answers for a device by name (`None`: nothing due, or no such device).
    pub(crate) fn refresh(&mut self, next_due: impl Fn(&str) -> Option<DateTime<Utc>>) {
        for name in std::mem::take(&mut self.stale) {
            if let Some(old) = self.due.remove(&name) {
                self.order.remove(&(old, name.clone()));
            }
            if let Some(at) = next_due(&name) {
                self.order.insert((at, name.clone()));
                self.due.insert(name, at);
            }
        }
    }

    /// The earliest moment anything is due.
    pub(crate) fn next(&self) -> Option<DateTime<Utc>> {
        self.order.first().map(|(at, _)| *at)
    }

    /// The devices due at or before `at`, in name order.
    pub(crate) fn due_at(&self, at: DateTime<Utc>) -> Vec<String> {
        let mut names: Vec<String> = self
            .order
            .iter()
            .take_while(|(t, _)| *t <= at)
            .map(|(_, name)| name.clone())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0).unwrap()
    }

    #[test]
    fn a_device_is_asked_again_only_after_a_touch() {
        let mut index = DueIndex::default();
        let mut moments = HashMap::from([("b", at(9)), ("a", at(9)), ("c", at(11))]);
        for name in ["a", "b", "c", "d"] {
            index.touch(name);
        }
        index.refresh(|n| moments.get(n).copied());
        assert_eq!(index.next(), Some(at(9)));
        assert_eq!(index.due_at(at(10)), ["a", "b"], "in name order");

        // "a" ran: its next moment is later. "b" changed without a touch is not seen.
        moments.insert("a", at(12));
        moments.insert("b", at(13));
        index.touch("a");
        index.refresh(|n| moments.get(n).copied());
        assert_eq!(index.due_at(at(11)), ["b", "c"]);

        // A device with nothing due (or gone) leaves the index.
        moments.remove("b");
        index.touch("b");
        index.refresh(|n| moments.get(n).copied());
        assert_eq!(index.due_at(at(12)), ["a", "c"]);
        moments.clear();
        for name in ["a", "c"] {
            index.touch(name);
        }
        index.refresh(|n| moments.get(n).copied());
        assert_eq!(index.next(), None);
    }
}
