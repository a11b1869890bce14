//! The push channel: Tenantless's stand-in for the Windows Push Notification Service.
//! An admin action (`admin::actions`) leaves a push for a device; a world in the same
//! process takes its devices' pushes at every step, and a device that follows the
//! server's clock gets its own as the answer to its long poll (`worldclock`). Pushes live
//! in memory, as WNS notifications do: one lost in a restart is made up by the device's
//! next scheduled check-in.

use std::collections::HashMap;
use std::sync::Mutex;

/// What a push asks of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Check in now: an OMA-DM session, then the IME.
    Sync,
    /// Restart (then check in).
    Reboot,
    /// Power off: nothing runs until someone powers the device on again.
    ShutDown,
}

impl Push {
    /// The Graph action that sent it.
    pub fn action(self) -> &'static str {
        match self {
            Push::Sync => "syncDevice",
            Push::Reboot => "rebootNow",
            Push::ShutDown => "shutDown",
        }
    }
}

/// Pushes waiting for their devices, by device id.
#[derive(Debug, Default)]
pub struct Pushes {
    waiting: Mutex<HashMap<String, Vec<Push>>>,
}

impl Pushes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Push>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves a push for a device (once per kind while it waits).
    pub fn leave(&self, device_id: &str, push: Push) {
        let mut waiting = self.lock();
        let mine = waiting.entry(device_id.to_owned()).or_default();
        if !mine.contains(&push) {
            mine.push(push);
        }
    }

    /// True when a push waits for the device.
    pub fn waiting_for(&self, device_id: &str) -> bool {
        self.lock().contains_key(device_id)
    }

    /// Takes the pushes waiting for one device.
    pub fn take_for(&self, device_id: &str) -> Vec<Push> {
        self.lock().remove(device_id).unwrap_or_default()
    }

    /// Takes every waiting push, by device id.
    pub fn take_all(&self) -> HashMap<String, Vec<Push>> {
        std::mem::take(&mut *self.lock())
    }
}
