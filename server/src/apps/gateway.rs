//! The IME's "SideCar" gateway, shaped like the service's: discovery by client
//! certificate, `SideCarGatewaySessions('<guid>')` PUT envelopes whose
//! `RequestContentType` names the call, and app content.
//!
//! Calls: `RequestApplication` (required and uninstall apps), `GetAvailableApp`,
//! `GetSelectedApp`, `GetContentInfo` (content URL and decryption info), and the result
//! upload `Win32AppResult`, whose payload (not public) Tenantless defines as a JSON
//! array of `{ApplicationId, Version, Intent, ErrorCode, ComplianceStateMessage,
//! EnforcementStateMessage}`. App lists use the gateway's payload encoding (base64 of
//! a length and a gzip stream). The decryption info is sealed to the device
//! certificate (see `sealing`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::policy;
use crate::api_error::ApiError;
use crate::journal::Event;
use crate::state::Shared;
use crate::storage::{AppStatusRow, Device};
use crate::tls::PeerCertificate;

/// The gateway's base path.
pub const GATEWAY_PATH: &str = "/SideCar/StatelessSideCarGatewayService";

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/RestUserAuthLocationService/RestUserAuthLocationService/Certificate/ServiceAddresses",
            get(service_addresses),
        )
        .route(&format!("{GATEWAY_PATH}/{{session}}"), put(session))
        .route("/content/apps/{app}/{file}", get(content))
}

async fn device_of(
    state: &Shared,
    peer: Option<Extension<PeerCertificate>>,
) -> Result<Arc<Device>, ApiError> {
    let cert = peer.and_then(|Extension(p)| p.0).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the gateway needs the device's client certificate",
        )
    })?;
    state
        .device_for_certificate(&crate::pki::thumbprint(&cert))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this certificate was not issued here, or was revoked",
            )
        })
}

async fn service_addresses(
    State(state): State<Shared>,
    peer: Option<Extension<PeerCertificate>>,
) -> Result<Json<Value>, ApiError> {
    device_of(&state, peer).await?;
    Ok(Json(json!([{
        "IsPrimary": true,
        "Services": [
            { "ServiceName": "SideCarGatewayService", "Url": format!("{}{GATEWAY_PATH}", state.base_url) },
        ],
    }])))
}

async fn session(
    State(state): State<Shared>,
    Path(session): Path<String>,
    peer: Option<Extension<PeerCertificate>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cert = peer.as_ref().and_then(|Extension(p)| p.0.clone());
    let device = device_of(&state, peer).await?;
    if !session.starts_with("SideCarGatewaySessions(") {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such gateway resource",
        ));
    }
    let envelope = Envelope::parse(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("envelope: {e}")))?;
    let request = envelope.text("RequestContentType").unwrap_or_default();
    let payload = envelope
        .text("RequestPayload")
        .unwrap_or_else(|| "[]".to_owned());
    let reason = envelope
        .text("CheckinReason")
        .unwrap_or_else(|| "Unknown".to_owned());
    // That the call came stands alone: the requests that only read (most) then never
    // join a transaction, and a commit does not wait for them.
    state.journal.note(
        &device.id,
        &Event::GatewayCall {
            request: request.clone(),
            reason: reason.clone(),
        },
    );
    // An IME older than the current one (a reverted snapshot) is brought up to date.
    let info: Value = envelope
        .text("ClientInfo")
        .and_then(|i| serde_json::from_str(&i).ok())
        .unwrap_or(Value::Null);
    let reported = info["SideCarAgentVersion"].as_str().unwrap_or_default();
    if crate::ime::is_outdated(&state, reported) {
        crate::ime::require(&state, &device.id, crate::ime::Why::Outdated).await?;
    }
    // A call made in a user's session targets as that user.
    let device = match session_user(&info)? {
        Some(upn) => {
            logged_on(&state, &device, upn, &reason).await?;
            Arc::new(Device {
                user_principal_name: upn.to_owned(),
                ..Device::clone(&device)
            })
        }
        None => device,
    };
    let response = match request.as_str() {
        "RequestApplication" | "GetAvailableApp" => {
            // Required and uninstall apps, or the available ones.
            let intents: &[i64] = if request == "RequestApplication" {
                &[3, 4]
            } else {
                &[1]
            };
            let answer = || async {
                let apps = super::policies_for(&state, &device, intents).await?;
                Ok(policy::compress(&Value::Array(apps).to_string()))
            };
            state.policy_answer(&request, &device, answer).await?
        }
        "GetSelectedApp" => {
            let asked: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let id = asked["ApplicationId"].as_str().unwrap_or_default();
            let all = super::policies_for(&state, &device, &[1, 3, 4]).await?;
            policy::compress(
                &Value::Array(all.into_iter().filter(|p| p["Id"] == id).collect()).to_string(),
            )
        }
        "ApplicationInventory" => {
            crate::inventory::upload(&state, &device, &payload).await?;
            "[]".to_owned()
        }
        "PolicyRequest" => {
            let answer = || async {
                let scripts = crate::scripts::platform::policies_for(&state, &device).await?;
                Ok(Value::Array(scripts).to_string())
            };
            state.policy_answer(&request, &device, answer).await?
        }
        "PolicyResult" => {
            crate::scripts::platform::results(&state, &device, &payload).await?;
            "[]".to_owned()
        }
        "GetScript" => {
            let answer = || async {
                let mut scripts =
                    crate::scripts::remediation::policies_for(&state, &device).await?;
                scripts.extend(crate::scripts::compliance::policies_for(&state, &device).await?);
                Ok(Value::Array(scripts).to_string())
            };
            state.policy_answer(&request, &device, answer).await?
        }
        "HealthScriptResult" => {
            crate::scripts::remediation::results(&state, &device, &payload).await?;
            "[]".to_owned()
        }
        "AgentStatusReport" => {
            crate::health::report(&state, &device, &payload).await?;
            "[]".to_owned()
        }
        "GetContentInfo" => {
            content_info(
                &state,
                &device,
                &payload,
                cert.as_deref().map(Vec::as_slice),
            )
            .await?
        }
        "Win32AppResult" => {
            results(&state, &device, &payload).await?;
            "[]".to_owned()
        }
        _ => "[]".to_owned(),
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        envelope.answer(&response),
    )
        .into_response())
}

/// The user whose session a call comes from (`UserPrincipalName` in the client info,
/// where the real IME sends the user's token); `None` for the userless session.
fn session_user(info: &Value) -> Result<Option<&str>, ApiError> {
    let Some(upn) = info["UserPrincipalName"].as_str() else {
        return Ok(None);
    };
    let plausible = syncml::entra::is_user_principal_name(upn);
    if plausible {
        Ok(Some(upn))
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ClientInfo: UserPrincipalName is not a user principal name",
        ))
    }
}

/// Notes that `upn` is signed in on the device: the first time the service hears of
/// them there, and at a logon check-in (CheckinReason `UserLogOn`, which moves the last
/// logon of every user signed in: the check-in does not say whose logon it was).
async fn logged_on(
    state: &Shared,
    device: &Device,
    upn: &str,
    reason: &str,
) -> Result<(), ApiError> {
    let upn = upn.to_ascii_lowercase();
    let now = state.now_text();
    if reason != "UserLogOn" && state.store.logon_remembered(&device.id, &upn) {
        return Ok(());
    }
    let new = match state.store.last_logon(&device.id, &upn).await? {
        None => true,
        Some(at) => reason == "UserLogOn" && at != now,
    };
    if !new {
        return Ok(());
    }
    state.store.record_logon(&device.id, &upn, &now).await?;
    let event = Event::UserLoggedOn {
        user: upn,
        reason: reason.to_owned(),
    };
    state.journal.record(&device.id, &event).await?;
    Ok(())
}

/// A gateway call's envelope as the device sent it: each field kept as its raw JSON,
/// so the answer echoes the envelope without rebuilding it (only a JSON object will do).
struct Envelope<'a> {
    fields: BTreeMap<String, &'a RawValue>,
}

impl<'a> Envelope<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        Ok(Envelope {
            fields: serde_json::from_slice(body)?,
        })
    }

    /// A string field's text (`None` when absent, null or not a string).
    fn text(&self, name: &str) -> Option<String> {
        let raw = self.fields.get(name)?;
        serde_json::from_str(raw.get()).ok()
    }

    /// The envelope with `ResponsePayload` set to `payload` (and `ResponseContentType`
    /// to JSON unless the device named one).
    fn answer(&self, payload: &str) -> String {
        let payload = quoted(payload);
        let json = quoted("application/json");
        let mut out = String::with_capacity(payload.len() + 512);
        out.push('{');
        let named_type = self
            .fields
            .get("ResponseContentType")
            .is_some_and(|raw| raw.get() != "null");
        let mut fields: BTreeMap<&str, &str> = self
            .fields
            .iter()
            .map(|(name, raw)| (name.as_str(), raw.get()))
            .collect();
        fields.insert("ResponsePayload", &payload);
        if !named_type {
            fields.insert("ResponseContentType", &json);
        }
        for (i, (name, raw)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&quoted(name));
            out.push(':');
            out.push_str(raw);
        }
        out.push('}');
        out
    }
}

/// A string as a JSON string literal.
fn quoted(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, text);
    String::from_utf8(out).unwrap_or_default()
}

/// The apps a device is given: assigned to it or to a user who has signed in on it
/// (any intent), or a dependency or superseded app of one that is. Content, keys and
/// reports are for these only.
async fn given_apps(
    state: &Shared,
    device: &Device,
) -> Result<std::collections::HashSet<String>, crate::storage::StoreError> {
    let mut views = vec![device.clone()];
    for logon in state.store.logons(&device.id).await? {
        if !logon
            .user_principal_name
            .eq_ignore_ascii_case(&device.user_principal_name)
        {
            views.push(Device {
                user_principal_name: logon.user_principal_name,
                ..device.clone()
            });
        }
    }
    let mut given = std::collections::HashSet::new();
    for view in &views {
        let policies = super::policies_for(state, view, &[1, 3, 4]).await?;
        given.extend(
            policies
                .iter()
                .filter_map(|p| p["Id"].as_str().map(str::to_owned)),
        );
    }
    Ok(given)
}

/// Refuses (as if the app did not exist) an app the device is not given.
async fn given_to(state: &Shared, device: &Device, id: &str) -> Result<(), ApiError> {
    if given_apps(state, device).await?.contains(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no app {id} for this device"),
        ))
    }
}

async fn content_info(
    state: &Shared,
    device: &Device,
    payload: &str,
    cert: Option<&[u8]>,
) -> Result<String, ApiError> {
    let asked: Value = serde_json::from_str(payload).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("GetContentInfo payload: {e}"),
        )
    })?;
    let id = asked["ApplicationId"].as_str().unwrap_or_default();
    given_to(state, device, id).await?;
    let app = state
        .store
        .app(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no app {id}")))?;
    let (reader, detection) = package(state, id).await?;
    let detection = syncml::intunewin::Detection::parse(&detection)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let e = &detection.encryption;
    let content = json!({
        "UploadLocation": format!("{}/content/apps/{id}/{}.intunewin.bin", state.base_url, app.revision),
        "UnencryptedFileSize": detection.unencrypted_content_size,
        "EncryptedFileSize": reader.len,
        "SetUpFilePath": detection.setup_file,
    });
    let decrypt = json!({
        "EncryptionKey": e.encryption_key,
        "MacKey": e.mac_key,
        "IV": e.initialization_vector,
        "Mac": e.mac,
        "ProfileIdentifier": e.profile_identifier,
        "FileDigest": e.file_digest,
        "FileDigestAlgorithm": e.file_digest_algorithm,
    });
    let sealed = super::sealing::decrypt_info(
        cert,
        &decrypt.to_string(),
        &state.random_bytes::<32>(),
        &state.random_bytes::<16>(),
    )
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    Ok(json!({
        "ApplicationId": id,
        "ContentInfo": content.to_string(),
        "DecryptInfo": sealed,
    })
    .to_string())
}

/// Serves an app's encrypted content (`IntunePackage.intunewin`), as the content
/// delivery network does.
async fn content(
    State(state): State<Shared>,
    Path((app, _file)): Path<(String, String)>,
    peer: Option<Extension<PeerCertificate>>,
) -> Result<Response, ApiError> {
    let device = device_of(&state, peer).await?;
    given_to(&state, &device, &app).await?;
    let (reader, _) = package(&state, &app).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, reader.len.to_string()),
        ],
        reader.into_body(),
    )
        .into_response())
}

/// The committed content devices download for an app, and its Detection.xml.
async fn package(
    state: &Shared,
    app: &str,
) -> Result<(super::content::FileReader, String), ApiError> {
    let no_content = || ApiError::new(StatusCode::NOT_FOUND, format!("app {app} has no content"));
    let (file_id, detection) = state.store.app_package(app).await?.ok_or_else(no_content)?;
    let file = state
        .store
        .content_file(&file_id)
        .await?
        .ok_or_else(no_content)?;
    let reader = super::content::FileReader::open(state, &file)
        .await?
        .ok_or_else(no_content)?;
    Ok((reader, detection))
}

async fn results(state: &Shared, device: &Device, payload: &str) -> Result<(), ApiError> {
    let reports: Value = serde_json::from_str(payload).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Win32AppResult payload: {e}"),
        )
    })?;
    let given = given_apps(state, device).await?;
    for r in reports.as_array().cloned().unwrap_or_default() {
        let app_id = r["ApplicationId"].as_str().unwrap_or_default().to_owned();
        let compliance = r["ComplianceStateMessage"]["ComplianceState"]
            .as_i64()
            .unwrap_or(5);
        if compliance == CLEANUP && !given.contains(&app_id) {
            cleaned_up(state, device, &app_id, &r).await?;
            continue;
        }
        if !state
            .accept_report(&device.id, &given, "Win32AppResult", &app_id, &r)
            .await?
        {
            continue;
        }
        let enforcement = r["EnforcementStateMessage"]["EnforcementState"]
            .as_i64()
            .unwrap_or(4000);
        let error_code = r["ErrorCode"].as_i64().unwrap_or(0);
        let previous = state
            .store
            .set_app_status(&AppStatusRow {
                device_id: device.id.clone(),
                app_id: app_id.clone(),
                compliance,
                enforcement,
                error_code,
                report: r.to_string(),
                updated_at: state.now_text(),
            })
            .await?;
        record(
            state,
            &device.id,
            Event::AppReport {
                app_id: app_id.clone(),
                version: r["Version"].as_i64().unwrap_or(0),
                compliance,
                enforcement,
                error_code,
            },
        )
        .await;
        let changed = previous.as_ref().is_none_or(|p| {
            p.compliance != compliance || p.enforcement != enforcement || p.error_code != error_code
        });
        if changed {
            record(
                state,
                &device.id,
                Event::AppStateChanged {
                    app_id,
                    old_compliance: previous.as_ref().map(|p| p.compliance),
                    new_compliance: compliance,
                    old_enforcement: previous.as_ref().map(|p| p.enforcement),
                    new_enforcement: enforcement,
                    error_code,
                },
            )
            .await;
        }
    }
    Ok(())
}

/// ComplianceState 100: the device cleaned up an app it is no longer given.
const CLEANUP: i64 = 100;

/// A device's Cleanup report for an app it is no longer given: the device leaves the
/// app's statuses (`deviceStatuses`), and the journal has the report and the change.
/// A report received before, or for an app the device had no state of, changes nothing.
async fn cleaned_up(
    state: &Shared,
    device: &Device,
    app_id: &str,
    r: &Value,
) -> Result<(), ApiError> {
    if let Some(report_id) = r["ReportId"].as_str() {
        if !state
            .store
            .first_receipt(&device.id, report_id, &state.now_text())
            .await?
        {
            return Ok(());
        }
    }
    let Some(previous) = state.store.remove_app_status(&device.id, app_id).await? else {
        return Ok(());
    };
    let enforcement = r["EnforcementStateMessage"]["EnforcementState"]
        .as_i64()
        .unwrap_or(previous.enforcement);
    let error_code = r["ErrorCode"].as_i64().unwrap_or(0);
    record(
        state,
        &device.id,
        Event::AppReport {
            app_id: app_id.to_owned(),
            version: r["Version"].as_i64().unwrap_or(0),
            compliance: CLEANUP,
            enforcement,
            error_code,
        },
    )
    .await;
    record(
        state,
        &device.id,
        Event::AppStateChanged {
            app_id: app_id.to_owned(),
            old_compliance: Some(previous.compliance),
            new_compliance: CLEANUP,
            old_enforcement: Some(previous.enforcement),
            new_enforcement: enforcement,
            error_code,
        },
    )
    .await;
    Ok(())
}

async fn record(state: &Shared, device: &str, event: Event) {
    if let Err(e) = state.journal.record(device, &event).await {
        tracing::error!("journal: {e}");
    }
}
