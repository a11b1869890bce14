//! The end of management. Graph's `retire` queues a Replace of DMClient's
//! `Provider/{ProviderID}/Unenroll`, `wipe` an Exec of RemoteWipe's `doWipe` (each
//! carried to the device by a push); a user who disconnects the device sends a 1226
//! alert `com.microsoft:mdm.unenrollment.userrequest`. When the device accepts (status
//! 200) or announces it, the session it happened in is its last: as it ends, the device's
//! certificates are revoked and its record removed (`device_removed`); the journal
//! keeps its history. `remoteLock` queues RemoteLock's `Lock`, which a Windows desktop
//! does not have (the device answers 404, as real ones do).

use syncml::dm::{Command, Data, Item, ItemCommand};

use crate::journal::Event;
use crate::state::Shared;
use crate::storage::{CommandRow, StoreError};

/// The alert type of a user's unenrollment.
pub const USER_UNENROLL_ALERT: &str = "com.microsoft:mdm.unenrollment.userrequest";

/// The ways a device leaves management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Graph's `retire`.
    Retire,
    /// Graph's `wipe`.
    Wipe,
    /// The user disconnected the device (Settings, Access work or school).
    UserUnenroll,
}

impl Ending {
    /// The name in the journal, and the command origin of what the server queues.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Retire => "retire",
            Ending::Wipe => "wipe",
            Ending::UserUnenroll => "userUnenroll",
        }
    }
}

/// The command that asks the device to leave.
fn command(ending: Ending) -> Option<Command> {
    match ending {
        Ending::Retire => {
            let provider = crate::enroll::PROVIDER_ID;
            let mut item = Item::target(format!(
                "./Device/Vendor/MSFT/DMClient/Provider/{provider}/Unenroll"
            ));
            item.data = Some(Data::Text(provider.into()));
            Some(Command::Replace(ItemCommand {
                items: vec![item],
                ..ItemCommand::default()
            }))
        }
        Ending::Wipe => Some(Command::Exec(ItemCommand {
            items: vec![Item::target("./Device/Vendor/MSFT/RemoteWipe/doWipe")],
            ..ItemCommand::default()
        })),
        Ending::UserUnenroll => None,
    }
}

/// Queues the command of a retire or wipe.
pub async fn request(state: &Shared, device_id: &str, ending: Ending) -> Result<(), StoreError> {
    if let Some(command) = command(ending) {
        crate::omadm::queue(state, device_id, &command, ending.as_str(), None).await?;
    }
    Ok(())
}

/// Queues RemoteLock's `Lock` (Graph's `remoteLock`).
pub async fn request_lock(state: &Shared, device_id: &str) -> Result<(), StoreError> {
    let lock = Command::Exec(ItemCommand {
        items: vec![Item::target("./Device/Vendor/MSFT/RemoteLock/Lock")],
        ..ItemCommand::default()
    });
    crate::omadm::queue(state, device_id, &lock, "admin", None).await?;
    Ok(())
}

/// The ending a command's status brings: a retire or wipe the device accepted.
pub fn accepted(command: &CommandRow, status: i64) -> Option<Ending> {
    if !(200..300).contains(&status) {
        return None;
    }
    [Ending::Retire, Ending::Wipe]
        .into_iter()
        .find(|e| e.as_str() == command.origin)
}

/// Forgets a device that left: its certificates revoked, its record removed, a
/// `device_removed` event.
pub async fn remove(state: &Shared, device_id: &str, ending: Ending) -> Result<(), StoreError> {
    let now = state.now_text();
    state.store.revoke_certificates(device_id, "", &now).await?;
    state.store.delete_device(device_id).await?;
    state.forget_device(device_id);
    state
        .journal
        .record(
            device_id,
            &Event::DeviceRemoved {
                reason: ending.as_str().into(),
            },
        )
        .await?;
    Ok(())
}
