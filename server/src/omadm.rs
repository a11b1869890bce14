//! OMA-DM management sessions at the provisioning document's ADDR, and the per-device
//! command queue.
//!
//! A device is known by its TLS client certificate; without one, by the OMA-DM MD5
//! digest (407 with a NextNonce challenge when `Cred` is missing, 401 when it is wrong,
//! 212 once accepted). Every message in and out is kept raw. Queued commands go out at
//! the next session and are re-sent at each later session until a `Status` for them
//! arrives; statuses and `Results` are matched by `MsgRef` + `CmdRef`. A session ends
//! when the server has nothing more to send and answers with statuses and `Final` only.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use base64::Engine;
use syncml::dm::{
    md5_credential, AlertCode, Chal, Command, ItemCommand, Meta, ReplyBuilder, Status, StatusCode,
    SyncHdr, SyncMl, AUTH_MD5, CONTENT_TYPE,
};

use crate::enroll::MANAGEMENT_PATH;
use crate::journal::{Event, ResultItem};
use crate::pki;
use crate::state::Shared;
use crate::storage::{DevInfo, MessageRow, NewCommand, StoreError};
use crate::tls::{ConnectionId, PeerCertificate};

/// At most this many queued commands go in one server message.
const MAX_COMMANDS_PER_MESSAGE: usize = 100;

/// A management session in progress.
#[derive(Debug)]
pub struct LiveSession {
    row: i64,
    session_id: String,
    auth: &'static str,
    /// For a digest session: the connection it was authenticated on, the only one its
    /// later messages (which carry no `Cred`) are accepted from.
    connection: Option<ConnectionId>,
    next_msg_id: u32,
    /// (our MsgID, CmdID) -> the queued command it carried, and whether it was nested.
    sent: HashMap<(String, String), (i64, bool)>,
    /// Commands already sent in this session (not re-sent until the next one).
    delivered: HashSet<i64>,
    /// Statuses of commands nested in an Atomic or Sequence, by the outer command.
    inner_statuses: HashMap<i64, Vec<serde_json::Value>>,
    /// The device accepted a retire or wipe, or announced its unenrollment: this
    /// session is its last ([`crate::lifecycle`]).
    ending: Option<crate::lifecycle::Ending>,
}

/// The management route.
pub fn routes() -> Router<Shared> {
    Router::new().route(MANAGEMENT_PATH, post(manage))
}

async fn manage(
    State(state): State<Shared>,
    peer: Option<Extension<PeerCertificate>>,
    connection: Option<Extension<ConnectionId>>,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(p)| p).unwrap_or_default();
    let connection = connection.map(|Extension(c)| c).unwrap_or_default();
    let xml = match handle(&state, &peer, connection, &body).await {
        Ok(xml) => xml,
        Err(e) => {
            tracing::error!("management session: {e}");
            fallback_reply(None, StatusCode::CommandFailed).to_xml()
        }
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], xml).into_response()
}

/// Queues a command for a device; its `CmdID` is assigned when it is sent.
pub async fn queue(
    state: &Shared,
    device_id: &str,
    command: &Command,
    origin: &str,
    retry_of: Option<i64>,
) -> Result<i64, StoreError> {
    let target = first_target(command);
    let id = state
        .store
        .insert_command(&NewCommand {
            device_id: device_id.into(),
            verb: command.name().into(),
            target: target.clone(),
            xml: command.to_xml(),
            origin: origin.into(),
            queued_at: state.now_text(),
            retry_of,
        })
        .await?;
    record(
        state,
        device_id,
        Event::CommandQueued {
            command: id,
            verb: command.name().into(),
            target,
            origin: origin.into(),
        },
    )
    .await;
    Ok(id)
}

fn first_target(command: &Command) -> String {
    match command {
        Command::Atomic(c) | Command::Sequence(c) => {
            c.commands.first().map(first_target).unwrap_or_default()
        }
        other => other
            .items()
            .iter()
            .find_map(|i| i.target.as_ref().or(i.source.as_ref()))
            .map(|l| l.loc_uri.clone())
            .unwrap_or_default(),
    }
}

async fn record(state: &Shared, device: &str, event: Event) {
    if let Err(e) = state.journal.record(device, &event).await {
        tracing::error!("journal: {e}");
    }
}

/// Who sent a message, as far as authentication goes.
enum Auth {
    /// Known by its certificate.
    Certificate(String),
    /// Known by a digest in this message.
    Digest(String),
    /// Known earlier in this session.
    Session(String),
    /// Not known: answer with this status (and a challenge for a known device).
    Refuse {
        /// The device the message named, when it exists (a refusal is journaled under it).
        device: Option<String>,
        code: StatusCode,
        challenge: Option<Chal>,
        reason: String,
    },
}

async fn authenticate(
    state: &Shared,
    peer: &PeerCertificate,
    connection: ConnectionId,
    msg: &SyncMl,
) -> Result<Auth, StoreError> {
    let claimed = msg
        .hdr
        .source
        .as_ref()
        .map(|s| s.loc_uri.to_uppercase())
        .unwrap_or_default();
    if let Some(cert) = &peer.0 {
        let thumb = pki::thumbprint(cert);
        return Ok(match state.device_for_thumbprint(&thumb).await? {
            Some(device) if claimed.is_empty() || device == claimed => Auth::Certificate(device),
            Some(device) => Auth::Refuse {
                device: state.store.device(&claimed).await?.map(|_| claimed.clone()),
                code: StatusCode::InvalidCredentials,
                challenge: None,
                reason: format!("certificate of {device} presented for {claimed}"),
            },
            None => Auth::Refuse {
                device: None,
                code: StatusCode::InvalidCredentials,
                challenge: None,
                reason: format!("certificate {thumb} was not issued here"),
            },
        });
    }
    let Some(device) = state.store.device(&claimed).await? else {
        return Ok(Auth::Refuse {
            device: None,
            code: StatusCode::InvalidCredentials,
            challenge: None,
            reason: format!("{claimed:?} is not enrolled"),
        });
    };
    if let Some(cred) = &msg.hdr.cred {
        let nonce = base64::engine::general_purpose::STANDARD
            .decode(device.client_nonce.as_bytes())
            .unwrap_or_else(|_| device.client_nonce.clone().into_bytes());
        let expected = md5_credential(&device.client_name, &device.client_secret, &nonce);
        if cred.data.trim() == expected {
            return Ok(Auth::Digest(device.id));
        }
        let challenge = new_challenge(state, &device.id).await?;
        return Ok(Auth::Refuse {
            device: Some(device.id),
            code: StatusCode::InvalidCredentials,
            challenge: Some(challenge),
            reason: "wrong digest credentials".into(),
        });
    }
    // A message without credentials continues a digest session only on the connection
    // that session authenticated on: a SessionID is easy to guess, a connection is not
    // someone else's. (A certificate session's messages all carry the certificate.)
    let in_session = {
        let sessions = state.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(&device.id).is_some_and(|live| {
            live.session_id == msg.hdr.session_id && live.connection == Some(connection)
        })
    };
    if in_session {
        return Ok(Auth::Session(device.id));
    }
    let challenge = new_challenge(state, &device.id).await?;
    Ok(Auth::Refuse {
        device: Some(device.id),
        code: StatusCode::AuthenticationRequired,
        challenge: Some(challenge),
        reason: "no credentials".into(),
    })
}

async fn new_challenge(state: &Shared, device_id: &str) -> Result<Chal, StoreError> {
    let nonce = base64::engine::general_purpose::STANDARD.encode(state.random_bytes::<16>());
    state.store.set_client_nonce(device_id, &nonce).await?;
    Ok(Chal {
        meta: Meta {
            format: Some("b64".into()),
            type_: Some(AUTH_MD5.into()),
            next_nonce: Some(nonce),
            ..Meta::default()
        },
    })
}

/// A reply for a message that could not be handled normally: the header status and
/// `Final`, which ends the session.
fn fallback_reply(hdr: Option<&SyncHdr>, code: StatusCode) -> SyncMl {
    let placeholder = SyncHdr {
        session_id: "0".into(),
        msg_id: "0".into(),
        ..SyncHdr::default()
    };
    let hdr = hdr.unwrap_or(&placeholder);
    let mut reply = ReplyBuilder::new(hdr, "1");
    reply.header_status(hdr, code, None);
    reply.build()
}

async fn keep_message(
    state: &Shared,
    session: i64,
    device: &str,
    direction: &str,
    msg_id: &str,
    body: &str,
) -> Result<(), StoreError> {
    state
        .store
        .keep_message(MessageRow {
            id: 0,
            session_row: session,
            device_id: device.into(),
            direction: direction.into(),
            msg_id: msg_id.into(),
            at: state.now_text(),
            body: body.into(),
        })
        .await?;
    let raw = body.to_owned();
    let event = if direction == "in" {
        Event::MessageIn {
            session,
            msg_id: msg_id.into(),
            raw,
        }
    } else {
        Event::MessageOut {
            session,
            msg_id: msg_id.into(),
            raw,
        }
    };
    record(state, device, event).await;
    Ok(())
}

async fn handle(
    state: &Shared,
    peer: &PeerCertificate,
    connection: ConnectionId,
    body: &[u8],
) -> Result<String, StoreError> {
    let msg = match SyncMl::parse(body) {
        Ok(msg) => msg,
        Err(e) => {
            // Nothing a stranger sends is kept beyond a bounded refusal.
            record(
                state,
                "",
                Event::refused(MANAGEMENT_PATH, "400", &e.to_string()),
            )
            .await;
            return Ok(fallback_reply(None, StatusCode::BadRequest).to_xml());
        }
    };

    let (device, header_code) = match authenticate(state, peer, connection, &msg).await? {
        Auth::Certificate(d) | Auth::Session(d) => (d, StatusCode::Ok),
        Auth::Digest(d) => (d, StatusCode::AuthenticationAccepted),
        Auth::Refuse {
            device,
            code,
            challenge,
            reason,
        } => {
            // Unauthenticated: the message is not kept, only a bounded refusal, under
            // the device it named when that device exists.
            record(
                state,
                device.as_deref().unwrap_or_default(),
                Event::refused(MANAGEMENT_PATH, code.to_string(), &reason),
            )
            .await;
            let mut reply = ReplyBuilder::new(&msg.hdr, "1");
            reply.header_status(&msg.hdr, code, challenge);
            return Ok(reply.build().to_xml());
        }
    };

    let mut live = begin(state, &device, &msg, body, header_code).await?;
    let msg_id = live.next_msg_id.to_string();
    live.next_msg_id += 1;
    let mut reply = ReplyBuilder::new(&msg.hdr, msg_id.clone());
    // An accepted digest is never accepted again: the next one must use a new nonce.
    let next_challenge = if header_code == StatusCode::AuthenticationAccepted {
        live.connection = Some(connection);
        Some(new_challenge(state, &device).await?)
    } else {
        None
    };
    reply.header_status(&msg.hdr, header_code, next_challenge);
    let aborted = answer(state, &device, &mut live, &msg, &mut reply).await?;
    if !aborted {
        deliver_queued(state, &device, &mut live, &msg_id, &mut reply).await?;
    }
    finish(state, device, live, &msg_id, reply, aborted).await
}

/// Keeps the message (its digest redacted) in the device's session, opening one.
async fn begin(
    state: &Shared,
    device: &str,
    msg: &SyncMl,
    body: &[u8],
    header_code: StatusCode,
) -> Result<LiveSession, StoreError> {
    // Kept only once the sender is known (and then without its digest).
    let raw_in = redact_credentials(
        syncml::xml::decode(body)
            .map(|t| t.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned()),
    );
    let live = open_session(state, device, &msg.hdr.session_id, header_code).await?;
    keep_message(state, live.row, device, "in", &msg.hdr.msg_id, &raw_in).await?;
    Ok(live)
}

/// Takes in the device's commands (alerts, DevInfo, statuses, results) and answers
/// each that wants a status; true when the device aborted the session.
async fn answer(
    state: &Shared,
    device: &str,
    live: &mut LiveSession,
    msg: &SyncMl,
    reply: &mut ReplyBuilder,
) -> Result<bool, StoreError> {
    let mut aborted = false;
    for command in &msg.body.commands {
        let code = match command {
            Command::Alert(alert) => {
                aborted |= alert.code() == Some(AlertCode::SessionAbort);
                on_alert(state, device, live, alert).await?;
                StatusCode::Ok
            }
            Command::Replace(replace) => {
                on_devinfo(state, device, replace).await?;
                StatusCode::Ok
            }
            Command::Status(status) => {
                on_status(state, device, live, status).await?;
                continue;
            }
            Command::Results(results) => {
                on_results(state, device, live, results).await?;
                continue;
            }
            _ => StatusCode::OptionalFeatureNotSupported,
        };
        if !command.no_resp() {
            reply.status(&msg.hdr.msg_id, command, code);
        }
    }
    Ok(aborted)
}

/// Adds the device's queued commands to the reply (up to [`MAX_COMMANDS_PER_MESSAGE`],
/// none sent twice in a session), each marked delivered.
async fn deliver_queued(
    state: &Shared,
    device: &str,
    live: &mut LiveSession,
    msg_id: &str,
    reply: &mut ReplyBuilder,
) -> Result<(), StoreError> {
    let mut added = 0;
    for queued in state.store.open_commands(device).await? {
        if live.delivered.contains(&queued.id) {
            continue;
        }
        if added == MAX_COMMANDS_PER_MESSAGE {
            break;
        }
        added += 1;
        let command = match Command::parse(&queued.xml) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(command = queued.id, "stored command unreadable: {e}");
                state
                    .store
                    .complete_command(queued.id, 500, None, &state.now_text())
                    .await?;
                continue;
            }
        };
        let sent = reply.push(command);
        let mut ids = vec![(sent.cmd_id().to_owned(), false)];
        nested_ids(sent, &mut ids);
        let cmd_id = ids[0].0.clone();
        for (id, inner) in ids {
            live.sent
                .insert((msg_id.to_owned(), id), (queued.id, inner));
        }
        live.delivered.insert(queued.id);
        state
            .store
            .mark_delivered(queued.id, &state.now_text())
            .await?;
        record(
            state,
            device,
            Event::CommandDelivered {
                command: queued.id,
                session: live.row,
                msg_id: msg_id.to_owned(),
                cmd_id,
            },
        )
        .await;
    }
    Ok(())
}

/// Keeps the reply; ends the session when the reply holds only statuses (or the device
/// aborted) and forgets a device that left in it, else keeps it for the next message.
async fn finish(
    state: &Shared,
    device: String,
    live: LiveSession,
    msg_id: &str,
    reply: ReplyBuilder,
    aborted: bool,
) -> Result<String, StoreError> {
    let ends = aborted || reply.only_statuses();
    let xml = reply.build().to_xml();
    keep_message(state, live.row, &device, "out", msg_id, &xml).await?;
    if !ends {
        state
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(device, live);
        return Ok(xml);
    }
    let outcome = if aborted { "aborted" } else { "completed" };
    state
        .store
        .end_session(live.row, &state.now_text(), outcome)
        .await?;
    record(
        state,
        &device,
        Event::SessionEnded {
            session: live.row,
            session_id: live.session_id.clone(),
            outcome: outcome.into(),
        },
    )
    .await;
    if let Some(ending) = live.ending {
        crate::lifecycle::remove(state, &device, ending).await?;
    }
    Ok(xml)
}

/// What stands in the kept copy of a message for the digest of its `Cred`.
const REDACTED: &str = "(redacted)";

/// A raw message as kept: the `Data` of its header's `Cred` (a digest that a reader of
/// the journal could replay) replaced by [`REDACTED`].
fn redact_credentials(mut raw: String) -> String {
    let Some(cred) = raw.find("<Cred>") else {
        return raw;
    };
    let Some(cred_end) = raw[cred..].find("</Cred>").map(|i| cred + i) else {
        return raw;
    };
    let data = raw[cred..cred_end]
        .find("<Data>")
        .map(|i| cred + i + "<Data>".len());
    let data_end = raw[cred..cred_end].find("</Data>").map(|i| cred + i);
    if let (Some(start), Some(end)) = (data, data_end) {
        if start <= end {
            raw.replace_range(start..end, REDACTED);
        }
    }
    raw
}

/// The CmdIDs of commands nested in an Atomic or Sequence.
fn nested_ids(command: &Command, out: &mut Vec<(String, bool)>) {
    if let Command::Atomic(c) | Command::Sequence(c) = command {
        for inner in &c.commands {
            out.push((inner.cmd_id().to_owned(), true));
            nested_ids(inner, out);
        }
    }
}

/// Continues the device's session with this SessionID, or starts a new one (closing a
/// session the device walked away from).
async fn open_session(
    state: &Shared,
    device: &str,
    session_id: &str,
    header_code: StatusCode,
) -> Result<LiveSession, StoreError> {
    let existing = state
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(device);
    if let Some(live) = existing {
        if live.session_id == session_id {
            return Ok(live);
        }
        state
            .store
            .end_session(live.row, &state.now_text(), "abandoned")
            .await?;
        record(
            state,
            device,
            Event::SessionEnded {
                session: live.row,
                session_id: live.session_id,
                outcome: "abandoned".into(),
            },
        )
        .await;
    }
    let auth = if header_code == StatusCode::AuthenticationAccepted {
        "digest"
    } else {
        "certificate"
    };
    let row = state
        .store
        .create_session(device, session_id, &state.now_text(), auth)
        .await?;
    state.store.set_last_sync(device, &state.now_text()).await?;
    record(
        state,
        device,
        Event::SessionStarted {
            session: row,
            session_id: session_id.into(),
            auth: auth.into(),
        },
    )
    .await;
    Ok(LiveSession {
        row,
        session_id: session_id.into(),
        auth,
        connection: None,
        next_msg_id: 1,
        sent: HashMap::new(),
        delivered: HashSet::new(),
        inner_statuses: HashMap::new(),
        ending: None,
    })
}

async fn on_alert(
    state: &Shared,
    device: &str,
    live: &mut LiveSession,
    alert: &syncml::dm::Alert,
) -> Result<(), StoreError> {
    let code = alert.code();
    if matches!(
        code,
        Some(AlertCode::ClientInitiated | AlertCode::ServerInitiated | AlertCode::NextMessage)
    ) {
        return Ok(());
    }
    if alert.items.is_empty() {
        record(
            state,
            device,
            Event::Alert {
                session: live.row,
                code: alert.data.clone(),
                alert_type: String::new(),
                source: String::new(),
                data: String::new(),
            },
        )
        .await;
    }
    for item in &alert.items {
        let source = item
            .source
            .as_ref()
            .map(|l| l.loc_uri.clone())
            .unwrap_or_default();
        let data = item.data_text().unwrap_or_default().to_owned();
        let alert_type = item
            .meta
            .as_ref()
            .and_then(|m| m.type_.clone())
            .unwrap_or_default();
        record(
            state,
            device,
            Event::Alert {
                session: live.row,
                code: alert.data.clone(),
                alert_type,
                source: source.clone(),
                data: data.clone(),
            },
        )
        .await;
        if alert_type_is_unenrollment(item) {
            live.ending = Some(crate::lifecycle::Ending::UserUnenroll);
        }
        crate::ime::on_alert(state, device, &source, &data).await?;
    }
    Ok(())
}

fn alert_type_is_unenrollment(item: &syncml::dm::Item) -> bool {
    item.meta
        .as_ref()
        .and_then(|m| m.type_.as_deref())
        .is_some_and(|t| t.trim() == crate::lifecycle::USER_UNENROLL_ALERT)
}

async fn on_devinfo(state: &Shared, device: &str, replace: &ItemCommand) -> Result<(), StoreError> {
    let mut info = DevInfo::default();
    for item in &replace.items {
        let Some(source) = &item.source else { continue };
        let value = item.data_text().map(str::to_owned);
        match source.loc_uri.trim_start_matches("./") {
            "DevInfo/Man" => info.manufacturer = value,
            "DevInfo/Mod" => info.model = value,
            "DevInfo/Lang" => info.language = value,
            "DevInfo/DmV" => info.dm_version = value,
            "Vendor/MSFT/DMClient/HWDevID" | "Device/Vendor/MSFT/DMClient/HWDevID" => {
                info.hw_dev_id = value
            }
            _ => {}
        }
    }
    state.store.update_devinfo(device, &info).await
}

async fn on_status(
    state: &Shared,
    device: &str,
    live: &mut LiveSession,
    status: &Status,
) -> Result<(), StoreError> {
    if status.cmd_ref == "0" {
        return Ok(());
    }
    let Some(&(command_id, inner)) = live
        .sent
        .get(&(status.msg_ref.clone(), status.cmd_ref.clone()))
    else {
        tracing::debug!(device, msg_ref = %status.msg_ref, cmd_ref = %status.cmd_ref, "status for no command of ours");
        return Ok(());
    };
    let code = status.data.trim().parse::<i64>().unwrap_or(500);
    if inner {
        let statuses = live.inner_statuses.entry(command_id).or_default();
        statuses.push(
            serde_json::json!({ "cmdRef": status.cmd_ref, "cmd": status.cmd, "status": code }),
        );
        let json = serde_json::json!({ "statuses": statuses }).to_string();
        return state.store.set_results(command_id, &json).await;
    }
    let Some(row) = state.store.command(command_id).await? else {
        return Ok(());
    };
    state
        .store
        .complete_command(command_id, code, None, &state.now_text())
        .await?;
    record(
        state,
        device,
        Event::CommandStatus {
            command: command_id,
            verb: row.verb.clone(),
            target: row.target.clone(),
            status: code,
        },
    )
    .await;
    if code == 418 && row.verb == "Add" && row.origin != "ime" && row.retry_of.is_none() {
        if let Ok(Command::Add(add)) = Command::parse(&row.xml) {
            queue(
                state,
                device,
                &Command::Replace(add),
                "retry",
                Some(command_id),
            )
            .await?;
        }
    }
    if let Some(ending) = crate::lifecycle::accepted(&row, code) {
        live.ending = Some(ending);
    }
    crate::ime::on_status(state, device, &row, code).await
}

async fn on_results(
    state: &Shared,
    device: &str,
    live: &LiveSession,
    results: &syncml::dm::Results,
) -> Result<(), StoreError> {
    let msg_ref = results.msg_ref.clone().unwrap_or_default();
    let Some(&(command_id, _)) = live.sent.get(&(msg_ref, results.cmd_ref.clone())) else {
        return Ok(());
    };
    let items: Vec<ResultItem> = results
        .items
        .iter()
        .map(|i| ResultItem {
            uri: i
                .source
                .as_ref()
                .or(i.target.as_ref())
                .map(|l| l.loc_uri.clone())
                .unwrap_or_default(),
            format: i
                .meta
                .as_ref()
                .and_then(|m| m.format.clone())
                .or_else(|| results.meta.as_ref().and_then(|m| m.format.clone())),
            data: i.data_text().unwrap_or_default().to_owned(),
        })
        .collect();
    let mut info = DevInfo::default();
    for item in &items {
        match item.uri.trim_start_matches("./") {
            "DevDetail/SwV" => info.os_version = Some(item.data.clone()),
            "DevDetail/Ext/Microsoft/DeviceName" => info.device_name = Some(item.data.clone()),
            _ => {}
        }
    }
    state.store.update_devinfo(device, &info).await?;
    let json = serde_json::json!({ "items": items }).to_string();
    state.store.set_results(command_id, &json).await?;
    record(
        state,
        device,
        Event::CommandResult {
            command: command_id,
            items,
        },
    )
    .await;
    Ok(())
}

impl LiveSession {
    /// How the session authenticated.
    pub fn auth(&self) -> &'static str {
        self.auth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cred_digest_is_not_kept() {
        let raw = "<SyncML><SyncHdr><Cred><Meta><Type>syncml:auth-md5</Type></Meta><Data>c2VjcmV0ZGlnZXN0</Data></Cred></SyncHdr><SyncBody><Replace><Item><Data>kept</Data></Item></Replace></SyncBody></SyncML>";
        let kept = redact_credentials(raw.to_owned());
        assert!(!kept.contains("c2VjcmV0ZGlnZXN0"), "{kept}");
        assert!(kept.contains("<Data>(redacted)</Data></Cred>"), "{kept}");
        assert!(kept.contains("<Data>kept</Data>"), "{kept}");
        for odd in ["<Cred>", "<Cred><Data>", "</Data><Cred></Cred>", ""] {
            assert_eq!(redact_credentials(odd.to_owned()), odd);
        }
    }
}
