//! Leaving management at the server's request. Both ways are answered 200 in the
//! session that asks, and carried out when it ends (no further session: the server
//! forgets the device, and the enrollment is gone):
//!
//! - **Retire** (Intune's retire; DMClient's `Provider/{ProviderID}/Unenroll`): the
//!   MSIs EnterpriseDesktopAppManagement installed are uninstalled (the IME, its
//!   service and its state with them), the enrollment's registry keys and the device's
//!   certificate are removed. Programs the IME installed and the user's files stay.
//! - **Wipe** (RemoteWipe's `doWipe`): Windows resets; only the hardware identity stays.
//!
//! A user can also disconnect the device (Settings, Access work or school): it tells the
//! server with a 1226 alert `com.microsoft:mdm.unenrollment.userrequest` in a last
//! session, then leaves as a retire does.

use chrono::{DateTime, Utc};

use crate::csp::{edam, Ctx};
use crate::device::Device;
use crate::state::{AgentState, Leaving, PendingAlert};

/// The alert type of a user's unenrollment.
pub const USER_REQUEST_ALERT: &str = "com.microsoft:mdm.unenrollment.userrequest";

/// The user disconnects the device: the alert goes out in a session now, and the
/// device leaves when it ends.
pub fn request_by_user(state: &mut AgentState) {
    state.pending_alerts.push(PendingAlert {
        code: "1226".into(),
        source: String::new(),
        type_: USER_REQUEST_ALERT.into(),
        format: "int".into(),
        mark: "informational".into(),
        data: "1".into(),
    });
    state.leaving = Some(Leaving::Retire);
    state.sync_requested = true;
}

/// Leaves management as the server asked.
pub fn leave(device: &mut Device, state: &mut AgentState, leaving: Leaving, now: DateTime<Utc>) {
    edam::remove_all(&mut Ctx { device, state, now });
    if let Some(e) = &state.enrollment {
        let reg = &mut device.registry;
        reg.delete_key(&format!(r"HKLM\SOFTWARE\Microsoft\Enrollments\{}", e.id));
        reg.delete_key(&format!(
            r"HKLM\SOFTWARE\Microsoft\Provisioning\OMADM\Accounts\{}",
            e.id
        ));
        for store in [
            r"HKLM\SOFTWARE\Microsoft\SystemCertificates\MY\Certificates",
            r"HKCU\Software\Microsoft\SystemCertificates\My\Certificates",
        ] {
            reg.delete_key(&format!(r"{store}\{}", e.thumbprint));
        }
    }
    // Who is signed in stays signed in through a retire; a wiped device's primary user
    // signs in again when Windows is set up.
    let users = std::mem::take(&mut state.users);
    *state = AgentState::default();
    if leaving == Leaving::Wipe {
        if let Err(e) = device.reset() {
            tracing::warn!("wipe: {e}");
        }
        state.users.extend(device.profile.primary_user());
    } else {
        state.users = users;
    }
}
