//! A world whose server runs elsewhere (`tenantless run --server URL`): a
//! `tenantless-server --clock manual` reached through its admin API. The world keeps
//! the devices in-process and moves the server's clock with its own; the journal is
//! read over HTTP and verified here, with the same filter language.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use server::journal::{Entry, Expectation, Filter, Verification};

/// How to reach a remote server.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The admin API's URL, e.g. `http://127.0.0.1:8080`; or the admin URLs of several
    /// replicas of one server behind one PostgreSQL, separated by commas: admin calls go
    /// to the first that can be reached, and the world's clock moves on every one that
    /// can (each replica keeps its own clock).
    pub admin_url: String,
    /// The admin API's bearer token.
    pub admin_token: String,
    /// The server's enrollment secret.
    pub enroll_secret: String,
}

/// A remote server, as the world uses it.
#[derive(Debug, Clone)]
pub struct RemoteServer {
    options: RemoteOptions,
    http: reqwest::Client,
    /// The URL devices use (from the server).
    pub base_url: String,
    /// The CA devices must trust, PEM (from the server).
    pub ca_pem: String,
}

/// A page of events read at a time.
const PAGE: usize = 10_000;

impl RemoteServer {
    /// Connects, checks that the server's clock is manual, and resets the server to an
    /// empty world at `start` (everything forgotten but its CA and configuration).
    pub async fn connect(options: RemoteOptions, start: DateTime<Utc>) -> Result<Self, String> {
        let mut remote = RemoteServer {
            options,
            http: admin_client()?,
            base_url: String::new(),
            ca_pem: String::new(),
        };
        let info = remote.call("GET", "/tenantless/server", None).await?;
        if info["clock"] != "manual" {
            return Err(format!(
                "{}: the server's clock is {}; start it with --clock manual so the world can move it",
                remote.options.admin_url, info["clock"]
            ));
        }
        remote.base_url = info["deviceBaseUrl"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        remote.ca_pem = info["caPem"].as_str().unwrap_or_default().to_owned();
        // One reset empties the shared database; each replica's reset also sets its clock.
        remote
            .on_every_replica(
                "/testbed/reset",
                json!({ "everything": true, "now": server::clock::format(start) }),
            )
            .await?;
        Ok(remote)
    }

    /// The enrollment secret.
    pub fn enroll_secret(&self) -> &str {
        &self.options.enroll_secret
    }

    /// The admin API's URL (the first replica's).
    pub fn admin_url(&self) -> &str {
        self.replicas().next().unwrap_or_default()
    }

    /// Every replica's admin URL.
    fn replicas(&self) -> impl Iterator<Item = &str> {
        self.options
            .admin_url
            .split(',')
            .map(|url| url.trim().trim_end_matches('/'))
            .filter(|url| !url.is_empty())
    }

    /// POSTs to every replica that can be reached; an error if none could, or if one
    /// that could said no.
    async fn on_every_replica(&self, path: &str, body: Value) -> Result<(), String> {
        let mut reached = false;
        let mut unreachable = Vec::new();
        for base in self.replicas() {
            let body = crate::world::AdminBody::Json(body.clone());
            match self.send(base, "POST", path, body).await {
                Err(e) => unreachable.push(e),
                Ok((status, answer)) => {
                    reached = true;
                    check(base, "POST", path, status, answer)?;
                }
            }
        }
        if reached {
            Ok(())
        } else {
            Err(unreachable.join("; "))
        }
    }

    /// One admin call; the status and JSON answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        mut body: crate::world::AdminBody,
    ) -> (u16, Value) {
        let mut failures = Vec::new();
        let mut replicas = self.replicas().peekable();
        while let Some(base) = replicas.next() {
            // A body (an upload may be large) is copied only while another replica remains.
            let body = if replicas.peek().is_some() {
                body.clone()
            } else {
                std::mem::replace(&mut body, crate::world::AdminBody::None)
            };
            match self.send(base, method, path, body).await {
                Ok(answer) => return answer,
                Err(e) => failures.push(e),
            }
        }
        (0, no_answer(failures.join("; ")))
    }

    /// One admin call to one replica; Err when it cannot be reached.
    async fn send(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: crate::world::AdminBody,
    ) -> Result<(u16, Value), String> {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.options.admin_token);
        let req = match body {
            crate::world::AdminBody::None => req,
            crate::world::AdminBody::Json(v) => req.json(&v),
            crate::world::AdminBody::Bytes(b) => req.body(b),
        };
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                Ok((status, r.json().await.unwrap_or(Value::Null)))
            }
            Err(e) => Err(format!("{base}: {e}")),
        }
    }

    /// An admin call that must succeed (2xx).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map_or(crate::world::AdminBody::None, crate::world::AdminBody::Json);
        let (status, answer) = self.request(method, path, body).await;
        check(self.admin_url(), method, path, status, answer)
    }

    /// Moves the server's clock to `to` (the world only moves forward).
    pub async fn set_clock(&self, to: DateTime<Utc>) -> Result<(), String> {
        self.on_every_replica(
            "/testbed/clock/advance",
            json!({ "to": server::clock::format(to) }),
        )
        .await
    }

    /// Marks a device as needing the IME; true if its installation was queued.
    pub async fn require_ime(&self, device_id: &str) -> Result<bool, String> {
        let path = format!(
            "/beta/deviceManagement/managedDevices/{device_id}/requireIntuneManagementExtension"
        );
        Ok(self.call("POST", &path, None).await?["queued"] == true)
    }

    /// Queues an OMA-DM command; its id.
    pub async fn queue(
        &self,
        device_id: &str,
        command: &syncml::dm::Command,
    ) -> Result<i64, String> {
        let path = format!("/beta/deviceManagement/managedDevices/{device_id}/commands");
        let row = self
            .call("POST", &path, Some(json!({ "syncml": command.to_xml() })))
            .await?;
        row["id"]
            .as_i64()
            .ok_or_else(|| format!("POST {path}: no command id in {row}"))
    }

    /// The events matching a filter, oldest first, a page at a time.
    pub async fn events(&self, filter: &Filter) -> Result<Vec<Entry>, String> {
        let filter_json = serde_json::to_string(filter).map_err(|e| e.to_string())?;
        let mut out: Vec<Entry> = Vec::new();
        loop {
            let mut url = reqwest::Url::parse(&format!("{}/testbed/events", self.admin_url()))
                .map_err(|e| e.to_string())?;
            url.query_pairs_mut()
                .append_pair("filter", &filter_json)
                .append_pair("limit", &PAGE.to_string());
            if let Some(last) = out.last() {
                url.query_pairs_mut()
                    .append_pair("since", &last.seq.to_string());
            }
            let path = format!("/testbed/events?{}", url.query().unwrap_or_default());
            let page = self.call("GET", &path, None).await?;
            let entries: Vec<Entry> = serde_json::from_value(page["value"].clone())
                .map_err(|e| format!("GET /testbed/events: {e}"))?;
            let full = entries.len() == PAGE;
            out.extend(entries);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Checks an expectation here, over the events of the filter's device (or all), as
    /// the server's own verification does.
    pub async fn verify(
        &self,
        filter: &Filter,
        expectation: &Expectation,
    ) -> Result<Verification, String> {
        let scope = Filter {
            device: filter.device.clone(),
            ..Filter::default()
        };
        let events = self.events(&scope).await?;
        Ok(Verification::check(filter, expectation, &events))
    }
}

/// An HTTP client for admin APIs. It trusts the system's CA certificates when there are
/// some, and works without them (a minimal container holds none; the admin API is
/// usually plain HTTP), where `reqwest::Client::new()` would panic.
pub fn admin_client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .or_else(|_| {
            reqwest::Client::builder()
                .tls_certs_only(std::iter::empty())
                .build()
        })
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// A Graph error body for a call that got no answer (0 as its status).
pub fn no_answer(message: impl Into<String>) -> Value {
    json!({ "error": { "code": "ServiceUnavailable", "message": message.into() } })
}

/// The message of a Graph error answer (or the whole answer when it is not one).
pub fn error_message(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .map_or_else(|| answer.to_string(), str::to_owned)
}

/// A 2xx answer's JSON, or an error naming the call.
fn check(
    base: &str,
    method: &str,
    path: &str,
    status: u16,
    answer: Value,
) -> Result<Value, String> {
    if (200..300).contains(&status) {
        Ok(answer)
    } else {
        Err(format!(
            "{method} {base}{path}: HTTP {status} {}",
            error_message(&answer)
        ))
    }
}
