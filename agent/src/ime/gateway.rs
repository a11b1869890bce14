//! The IME's client of the SideCar gateway: service discovery by client certificate,
//! then `SideCarGatewaySessions('<guid>')` PUTs carrying an envelope.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::AgentError;
use crate::http;

/// Finds the gateway's URL from the management server's service addresses.
pub async fn discover(
    client: &reqwest::Client,
    management_url: &str,
) -> Result<String, AgentError> {
    let url = format!(
        "{}/RestUserAuthLocationService/RestUserAuthLocationService/Certificate/ServiceAddresses",
        crate::remote_clock::origin(management_url)
    );
    let entries: Value = json_answer(client.get(&url), &url, &url).await?;
    let entries = entries.as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| e["IsPrimary"] == true)
        .or_else(|| entries.first());
    entry
        .and_then(|e| e["Services"].as_array())
        .and_then(|s| {
            s.iter()
                .find(|s| s["ServiceName"] == "SideCarGatewayService")
        })
        .and_then(|s| s["Url"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| AgentError::Protocol(format!("{url}: no SideCarGatewayService")))
}

/// One gateway call; returns the response payload (a string, as the envelope has it).
pub async fn call(
    client: &reqwest::Client,
    gateway: &str,
    session: &str,
    request: &str,
    payload: &Value,
    reason: &str,
    client_info: &Value,
) -> Result<String, AgentError> {
    let url = format!("{gateway}/SideCarGatewaySessions('{session}')?api-version=1.5");
    let envelope = Envelope {
        key: session,
        session_id: session,
        request_content_type: request,
        request_payload: payload.to_string(),
        response_content_type: None,
        client_info: client_info.to_string(),
        response_payload: None,
        checkin_interval_minutes: 60,
        checkin_reason: reason,
        enabled_flights: None,
    };
    let put = client
        .put(&url)
        .header("Prefer", "return-content")
        .json(&envelope);
    let answer: Answer = json_answer(put, &url, &format!("{request}: the gateway")).await?;
    Ok(match answer.payload {
        Some(Value::String(payload)) => payload,
        _ => "[]".to_owned(),
    })
}

/// The envelope of a gateway call, with the service's field names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope<'a> {
    key: &'a str,
    session_id: &'a str,
    request_content_type: &'a str,
    /// A JSON document as a string.
    request_payload: String,
    response_content_type: Option<&'a str>,
    /// A JSON document as a string.
    client_info: String,
    response_payload: Option<&'a str>,
    checkin_interval_minutes: u32,
    checkin_reason: &'a str,
    enabled_flights: Option<&'a str>,
}

/// What the agent reads of the envelope that comes back (the rest is skipped).
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "ResponsePayload", default)]
    payload: Option<Value>,
}

/// Sends a request and reads its JSON answer; `who` names the other side in errors.
async fn json_answer<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
    who: &str,
) -> Result<T, AgentError> {
    let response = request.send().await.map_err(|e| http::classify(url, e))?;
    if !response.status().is_success() {
        return Err(AgentError::Protocol(format!(
            "{who} answered HTTP {}",
            response.status()
        )));
    }
    response.json().await.map_err(|e| http::classify(url, e))
}

/// Decodes the gateway's compressed payload: base64 of a 4-byte length and a gzip stream.
pub fn decompress(payload: &str) -> Option<String> {
    use base64::Engine;
    use std::io::Read;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.get(4..)?)
        .take(64 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Reads `DecryptInfo` from `GetContentInfo`: an `<EncryptedMessage>` whose
/// `EncryptedContent` is a CMS EnvelopedData sealed to the device certificate (opened
/// with the device's RSA key, base64 PKCS #8), or, for Tenantless's fast-keys devices,
/// the JSON itself.
pub fn open_decrypt_info(text: &str, device_key_b64: Option<&str>) -> Result<Value, String> {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    let text = text.trim_start();
    if !text.starts_with('<') {
        return serde_json::from_str(text).map_err(|e| format!("DecryptInfo: {e}"));
    }
    let message = syncml::xml::parse(text).map_err(|e| format!("DecryptInfo: {e}"))?;
    let content = message
        .child_text("EncryptedContent")
        .ok_or("DecryptInfo has no EncryptedContent")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let der = b64
        .decode(content.trim())
        .map_err(|e| format!("EncryptedContent: {e}"))?;
    let envelope = syncml::cms::parse(&der).map_err(|e| format!("EncryptedContent: {e}"))?;
    let key_der = b64
        .decode(device_key_b64.ok_or("the device is not enrolled")?)
        .map_err(|e| format!("the device key: {e}"))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&key_der)
        .map_err(|_| "the device key is not RSA; it cannot open DecryptInfo".to_owned())?;
    // The recipient info for this device's key is the one whose key unwraps.
    let content_key = envelope
        .recipients
        .iter()
        .find_map(|r| key.decrypt(rsa::Pkcs1v15Encrypt, &r.encrypted_key).ok())
        .ok_or("DecryptInfo is not sealed to this device's certificate")?;
    let plain = envelope
        .decrypt(&content_key)
        .map_err(|e| format!("DecryptInfo: {e}"))?;
    serde_json::from_slice(&plain).map_err(|e| format!("DecryptInfo content: {e}"))
}

/// A `SideCarGatewaySessions` id for a conversation: derived from what it is for and
/// when (world time), so the same world gives the same ids.
pub fn session_id(purpose: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{purpose}{now}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// What makes gateway calls: a check-in's [`Session`] or a [`Conversation`].
pub trait Caller {
    /// One call; the answer's payload.
    fn call(
        &self,
        request: &str,
        payload: &Value,
        reason: &str,
    ) -> impl std::future::Future<Output = Result<String, AgentError>>;
}

/// Sends result entries at least once: each gets a `ReportId` (from the device, the
/// report's number, the time and the entry, so a world replays the same ids, and two
/// reports never share one), the report joins those not yet acknowledged, and all go
/// in order. What fails stays in `outbox`, to go first, with the same ids, next time;
/// the server records a `ReportId` once.
pub async fn send_report(
    outbox: &mut crate::state::Outbox,
    gw: &impl Caller,
    request: &str,
    entries: Vec<Value>,
    reason: &str,
    (device_id, now): (&str, chrono::DateTime<chrono::Utc>),
) -> Result<(), AgentError> {
    use sha2::{Digest, Sha256};
    outbox.made += 1;
    let number = outbox.made;
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(i, mut entry)| {
            let digest = Sha256::digest(
                format!("{device_id}|{number}|{now}|{request}|{i}|{entry}").as_bytes(),
            );
            entry["ReportId"] = Value::String(hex::encode(&digest[..16]));
            entry
        })
        .collect();
    outbox.waiting.push(crate::state::UnsentReport {
        request: request.to_owned(),
        payload: Value::Array(entries),
    });
    send_waiting(outbox, gw, reason).await
}

/// Sends the reports that wait, oldest first, stopping at the first that fails.
pub async fn send_waiting(
    outbox: &mut crate::state::Outbox,
    gw: &impl Caller,
    reason: &str,
) -> Result<(), AgentError> {
    while let Some(next) = outbox.waiting.first() {
        gw.call(&next.request, &next.payload, reason).await?;
        let entries = next.payload.as_array().map_or(0, Vec::len) as u64;
        outbox.acknowledged += entries;
        outbox.waiting.remove(0);
    }
    Ok(())
}

/// One conversation with the gateway: what every call of a check-in shares.
pub struct Session<'a> {
    /// The HTTPS client holding the device certificate.
    pub client: &'a reqwest::Client,
    /// The gateway's URL.
    pub url: &'a str,
    /// The `SideCarGatewaySessions` id.
    pub id: &'a str,
    /// The client info every envelope carries.
    pub info: &'a Value,
}

impl Caller for Session<'_> {
    async fn call(
        &self,
        request: &str,
        payload: &Value,
        reason: &str,
    ) -> Result<String, AgentError> {
        call(
            self.client,
            self.url,
            self.id,
            request,
            payload,
            reason,
            self.info,
        )
        .await
    }
}

/// A conversation of its own, for an upload between check-ins (inventory, remediation
/// results, the agent status report): its session id comes from `purpose` and the time.
pub struct Conversation<'a> {
    client: &'a reqwest::Client,
    url: String,
    id: String,
    info: Value,
}

impl<'a> Conversation<'a> {
    /// A conversation of `device` (running IME `agent_version`) with the gateway at `url`.
    pub fn new(
        client: &'a reqwest::Client,
        url: &str,
        purpose: &str,
        device: &crate::device::Device,
        agent_version: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Conversation {
            client,
            url: url.to_owned(),
            id: session_id(&format!("{purpose}{}", device.profile.device_id), now),
            info: json!({
                "DeviceName": device.profile.device_name,
                "SideCarAgentVersion": agent_version,
            }),
        }
    }
}

impl Caller for Conversation<'_> {
    async fn call(
        &self,
        request: &str,
        payload: &Value,
        reason: &str,
    ) -> Result<String, AgentError> {
        let session = Session {
            client: self.client,
            url: &self.url,
            id: &self.id,
            info: &self.info,
        };
        session.call(request, payload, reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A gateway that fails the first `failures` calls and remembers what it accepted.
    struct Flaky {
        failures: RefCell<usize>,
        accepted: RefCell<Vec<(String, Value)>>,
    }

    impl Caller for Flaky {
        async fn call(
            &self,
            request: &str,
            payload: &Value,
            _: &str,
        ) -> Result<String, AgentError> {
            if *self.failures.borrow() > 0 {
                *self.failures.borrow_mut() -= 1;
                return Err(AgentError::Protocol("the gateway answered HTTP 503".into()));
            }
            self.accepted
                .borrow_mut()
                .push((request.to_owned(), payload.clone()));
            Ok("[]".into())
        }
    }

    fn t(hour: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::hours(hour)
    }

    #[tokio::test]
    async fn a_report_that_was_not_acknowledged_goes_again_first_with_the_same_ids() {
        let gw = Flaky {
            failures: RefCell::new(1),
            accepted: RefCell::default(),
        };
        let mut outbox = crate::state::Outbox::default();
        let first = vec![json!({ "PolicyId": "A", "Result": "Failed" })];
        let sent = send_report(
            &mut outbox,
            &gw,
            "PolicyResult",
            first,
            "Scheduled",
            ("D1", t(1)),
        )
        .await;
        assert!(sent.is_err());
        assert_eq!(outbox.waiting.len(), 1, "kept for next time");
        assert_eq!(outbox.acknowledged, 0);
        let id = outbox.waiting[0].payload[0]["ReportId"].clone();
        assert!(id.is_string());

        let second = vec![json!({ "PolicyId": "B", "Result": "Success" })];
        send_report(
            &mut outbox,
            &gw,
            "PolicyResult",
            second,
            "Scheduled",
            ("D1", t(2)),
        )
        .await
        .unwrap();
        assert!(outbox.waiting.is_empty());
        assert_eq!(outbox.acknowledged, 2, "both entries, once each");
        let accepted = gw.accepted.borrow();
        assert_eq!(accepted.len(), 2);
        assert_eq!(accepted[0].1[0]["PolicyId"], "A", "the older report first");
        assert_eq!(accepted[0].1[0]["ReportId"], id, "with the same id");
        assert_eq!(accepted[1].1[0]["PolicyId"], "B");
        assert_ne!(accepted[1].1[0]["ReportId"], id);
    }
}
