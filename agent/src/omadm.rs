//! The OMA-DM client: one management session, as Windows runs it. Package 1 (Alert
//! 1201, Alert 1224 LoginStatus, DevInfo Replace, HWDevID, and any alerts waiting to
//! be sent), then as many messages as the server needs: each answers every command
//! with a Status (and Results for a Get) from the DM tree, until the server replies
//! with statuses only. A 401/407 challenge is answered with the MD5 digest.

use base64::Engine;
use chrono::{DateTime, Utc};
use syncml::dm::*;

use crate::csp::{self, Ctx};
use crate::device::Device;
use crate::error::AgentError;
use crate::http;
use crate::state::{AgentState, SessionSummary};

/// At most this many messages in one session.
const MAX_MESSAGES: u32 = 64;

/// The HTTP client for management: the device's certificate unless it uses the digest.
pub fn management_client(state: &AgentState) -> Result<reqwest::Client, AgentError> {
    let e = state.enrollment.as_ref().ok_or(AgentError::NotEnrolled)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let identity = if e.digest_only {
        None
    } else {
        let cert = b64
            .decode(&e.cert_b64)
            .map_err(|e| AgentError::Config(format!("stored certificate: {e}")))?;
        let key = b64
            .decode(&e.key_b64)
            .map_err(|e| AgentError::Config(format!("stored key: {e}")))?;
        Some((cert, key))
    };
    http::client(&e.trusted_ca_pem, identity)
}

/// Runs one management session.
pub async fn session(
    device: &mut Device,
    state: &mut AgentState,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<SessionSummary, AgentError> {
    let e = state.enrollment.clone().ok_or(AgentError::NotEnrolled)?;
    state.sessions += 1;
    let session_id = format!("{:X}", state.sessions);
    let mut summary = SessionSummary {
        at: now,
        session_id: session_id.clone(),
        messages: 0,
        commands: 0,
        outcome: "completed".into(),
    };
    let alerts = std::mem::take(&mut state.pending_alerts);
    let mut msg_id = 1u32;
    let mut outgoing = package_one(device, state, &e.addr, &session_id, &alerts);
    let mut challenges = 0;
    loop {
        if msg_id > MAX_MESSAGES {
            state.pending_alerts.extend(alerts);
            return Err(AgentError::Protocol(format!(
                "the server kept the session going past {MAX_MESSAGES} messages"
            )));
        }
        outgoing.hdr.msg_id = msg_id.to_string();
        let reply = match exchange(client, &e.addr, &outgoing).await {
            Ok(r) => r,
            Err(err) => {
                state.pending_alerts.extend(alerts);
                return Err(err);
            }
        };
        summary.messages += 1;
        msg_id += 1;
        let header = reply.body.commands.iter().find_map(|c| match c {
            Command::Status(s) if s.cmd_ref == "0" => Some(s.clone()),
            _ => None,
        });
        let code = header.as_ref().and_then(Status::code);
        if matches!(
            code,
            Some(StatusCode::AuthenticationRequired | StatusCode::InvalidCredentials)
        ) {
            let nonce = header
                .as_ref()
                .and_then(|h| h.chal.as_ref())
                .and_then(|c| c.meta.next_nonce.clone());
            challenges += 1;
            let (Some(nonce), true) = (nonce, challenges <= 2) else {
                state.pending_alerts.extend(alerts);
                return Err(AgentError::Authentication(format!(
                    "the server answered {} to the digest",
                    code.map(|c| c.as_u16()).unwrap_or(0)
                )));
            };
            if let Some(en) = state.enrollment.as_mut() {
                en.client_nonce = nonce;
            }
            outgoing.hdr.cred = Some(credentials(state));
            continue;
        }
        if code == Some(StatusCode::BadRequest) {
            state.pending_alerts.extend(alerts);
            return Err(AgentError::Protocol(
                "the server could not read the device's message (400)".into(),
            ));
        }
        if let Some(nonce) = header.and_then(|h| h.chal).and_then(|c| c.meta.next_nonce) {
            if let Some(en) = state.enrollment.as_mut() {
                en.client_nonce = nonce;
            }
        }
        let commands: Vec<&Command> = reply
            .body
            .commands
            .iter()
            .filter(|c| !matches!(c, Command::Status(_) | Command::Results(_)))
            .collect();
        if commands.is_empty() && reply.body.final_ {
            break;
        }
        summary.commands += commands.len() as u32;
        outgoing = answer(device, state, &reply, &commands, &outgoing.hdr, now);
        outgoing.hdr.cred = None;
    }
    state.last_session = Some(summary.clone());
    Ok(summary)
}

async fn exchange(
    client: &reqwest::Client,
    addr: &str,
    msg: &SyncMl,
) -> Result<SyncMl, AgentError> {
    let url = if addr.contains('?') {
        addr.to_owned()
    } else {
        format!("{addr}?mode=Maintenance&Platform=WoA")
    };
    let response = client
        .post(&url)
        .header("Content-Type", CONTENT_TYPE)
        .body(msg.to_xml())
        .send()
        .await
        .map_err(|e| http::classify(&url, e))?;
    if let Some(wait) = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
    {
        if response.status().as_u16() == 429 {
            return Err(AgentError::Unreachable {
                url,
                reason: format!("throttled (429), retry after {wait} s"),
            });
        }
    }
    if !response.status().is_success() {
        return Err(AgentError::Protocol(format!(
            "{url} answered HTTP {}",
            response.status()
        )));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| http::classify(&url, e))?;
    SyncMl::parse(&body).map_err(|e| AgentError::Protocol(format!("the server's SyncML: {e}")))
}

fn credentials(state: &AgentState) -> Cred {
    let e = state.enrollment.as_ref();
    let nonce_b64 = e.map(|e| e.client_nonce.clone()).unwrap_or_default();
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(nonce_b64.as_bytes())
        .unwrap_or_else(|_| nonce_b64.clone().into_bytes());
    let (name, secret) = e
        .map(|e| (e.client_name.clone(), e.client_secret.clone()))
        .unwrap_or_default();
    Cred {
        meta: Some(Meta {
            format: Some("b64".into()),
            type_: Some(AUTH_MD5.into()),
            ..Meta::default()
        }),
        data: md5_credential(&name, &secret, &nonce),
    }
}

fn package_one(
    device: &Device,
    state: &AgentState,
    addr: &str,
    session_id: &str,
    alerts: &[crate::state::PendingAlert],
) -> SyncMl {
    let p = &device.profile;
    let devinfo = |node: &str, value: &str| Item::source_value(format!("./DevInfo/{node}"), value);
    let mut commands = vec![
        Command::Alert(Alert {
            cmd_id: "2".into(),
            data: AlertCode::ClientInitiated.to_string(),
            ..Alert::default()
        }),
        Command::Alert(Alert {
            cmd_id: "3".into(),
            data: AlertCode::ClientEvent.to_string(),
            items: vec![Item {
                meta: Some(Meta {
                    type_: Some("com.microsoft/MDM/LoginStatus".into()),
                    ..Meta::default()
                }),
                data: Some(Data::Text(
                    if state.users.is_empty() {
                        "none"
                    } else {
                        "user"
                    }
                    .into(),
                )),
                ..Item::default()
            }],
            ..Alert::default()
        }),
        Command::Replace(ItemCommand {
            cmd_id: "4".into(),
            items: vec![
                devinfo("DevId", &p.device_id),
                devinfo("Man", &p.manufacturer),
                devinfo("Mod", &p.model),
                devinfo("DmV", "1.3"),
                devinfo("Lang", &p.language),
                Item::source_value("./Vendor/MSFT/DMClient/HWDevID", &p.hw_dev_id),
            ],
            ..ItemCommand::default()
        }),
    ];
    for (n, a) in alerts.iter().enumerate() {
        commands.push(Command::Alert(Alert {
            cmd_id: (5 + n).to_string(),
            data: a.code.clone(),
            items: vec![Item {
                source: (!a.source.is_empty()).then(|| Location::uri(&a.source)),
                meta: Some(Meta {
                    type_: Some(a.type_.clone()),
                    format: Some(a.format.clone()),
                    mark: Some(a.mark.clone()),
                    ..Meta::default()
                }),
                data: Some(Data::Text(a.data.clone())),
                ..Item::default()
            }],
            ..Alert::default()
        }));
    }
    let e = state.enrollment.as_ref();
    SyncMl {
        hdr: SyncHdr {
            ver_dtd: "1.2".into(),
            ver_proto: "DM/1.2".into(),
            session_id: session_id.into(),
            msg_id: "1".into(),
            target: Some(Location::uri(addr)),
            source: Some(Location {
                loc_uri: p.device_id.clone(),
                loc_name: e.map(|e| e.client_name.clone()),
            }),
            cred: e.filter(|e| e.digest_only).map(|_| credentials(state)),
            meta: Some(Meta {
                max_msg_size: Some("512000".into()),
                ..Meta::default()
            }),
        },
        body: SyncBody {
            commands,
            final_: true,
        },
    }
}

/// The next message: the header status, a status (and results) for every command.
fn answer(
    device: &mut Device,
    state: &mut AgentState,
    reply: &SyncMl,
    commands: &[&Command],
    previous: &SyncHdr,
    now: DateTime<Utc>,
) -> SyncMl {
    let mut out = vec![Command::Status(Status {
        cmd_id: "1".into(),
        msg_ref: reply.hdr.msg_id.clone(),
        cmd_ref: "0".into(),
        cmd: "SyncHdr".into(),
        data: StatusCode::Ok.to_string(),
        ..Status::default()
    })];
    let mut next = 2u32;
    let mut results = Vec::new();
    let mut ctx = Ctx { device, state, now };
    for command in commands {
        for a in csp::execute(&mut ctx, command) {
            out.push(Command::Status(Status {
                cmd_id: next.to_string(),
                msg_ref: reply.hdr.msg_id.clone(),
                cmd_ref: a.cmd_ref.clone(),
                cmd: a.cmd.clone(),
                target_refs: a.targets.clone(),
                data: a.status.to_string(),
                ..Status::default()
            }));
            next += 1;
            if !a.results.is_empty() {
                results.push((a.cmd_ref, a.results));
            }
        }
    }
    for (cmd_ref, items) in results {
        out.push(Command::Results(Results {
            cmd_id: next.to_string(),
            msg_ref: Some(reply.hdr.msg_id.clone()),
            cmd_ref,
            items,
            ..Results::default()
        }));
        next += 1;
    }
    if !reply.body.final_ {
        out.push(Command::Alert(Alert {
            cmd_id: next.to_string(),
            data: AlertCode::NextMessage.to_string(),
            ..Alert::default()
        }));
    }
    SyncMl {
        hdr: SyncHdr {
            cred: None,
            ..previous.clone()
        },
        body: SyncBody {
            commands: out,
            final_: true,
        },
    }
}
