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
    /// The admin API's URL, e.g. `http://127.0.0.1:8080`.
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
            http: reqwest::Client::new(),
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
        remote
            .call(
                "POST",
                "/testbed/reset",
                Some(json!({ "everything": true, "now": server::clock::format(start) })),
            )
            .await?;
        Ok(remote)
    }

    /// The enrollment secret.
    pub fn enroll_secret(&self) -> &str {
        &self.options.enroll_secret
    }

    /// The admin API's URL.
    pub fn admin_url(&self) -> &str {
        self.options.admin_url.trim_end_matches('/')
    }

    /// One admin call; the status and JSON answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: crate::world::AdminBody,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.admin_url());
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let req = self
            .http
            .request(method, url)
            .bearer_auth(&self.options.admin_token);
        let req = match body {
            crate::world::AdminBody::None => req,
            crate::world::AdminBody::Json(v) => req.json(&v),
            crate::world::AdminBody::Bytes(b) => req.body(b),
        };
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "detail": e.to_string() })),
        }
    }

    /// An admin call that must succeed (2xx).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map_or(crate::world::AdminBody::None, crate::world::AdminBody::Json);
        let (status, answer) = self.request(method, path, body).await;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            let detail = answer["detail"]
                .as_str()
                .map_or(answer.to_string(), str::to_owned);
            Err(format!(
                "{method} {}{path}: HTTP {status} {detail}",
                self.admin_url()
            ))
        }
    }

    /// Moves the server's clock to `to` (the world only moves forward).
    pub async fn set_clock(&self, to: DateTime<Utc>) -> Result<(), String> {
        self.call(
            "POST",
            "/testbed/clock/advance",
            Some(json!({ "to": server::clock::format(to) })),
        )
        .await
        .map(|_| ())
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
