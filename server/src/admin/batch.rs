//! `POST /$batch` (under `/v1.0` and `/beta`), as Graph answers it: up to 20 requests,
//! each run through the whole admin API in array order with the batch's own token,
//! `dependsOn` honoured (a request whose dependency failed gets 424 without running),
//! each answer with its own status, headers and body. Backup tools read apps,
//! assignments and scripts this way.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::api_error::ApiError;
use crate::odata::Address;
use crate::state::Shared;

/// Graph's limit on requests in one batch.
pub const MAX_REQUESTS: usize = 20;
/// The largest answer one inner request may give (larger ones fail alone, with 413).
const ANSWER_LIMIT: usize = 32 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct Batch {
    requests: Vec<Inner>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inner {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    depends_on: Vec<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// `POST /$batch`.
pub async fn run(State(state): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let root = request
        .extensions()
        .get::<Address>()
        .map_or("beta", |a| a.root);
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let host = request.headers().get(header::HOST).cloned();
    let bytes = to_bytes(request.into_body(), 4 * 1024 * 1024)
        .await
        .map_err(|e| bad(format!("the batch could not be read: {e}")))?;
    let batch: Batch = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the batch is not Graph's JSON batch format: {e}")))?;
    if batch.requests.is_empty() || batch.requests.len() > MAX_REQUESTS {
        return Err(bad(format!(
            "a batch holds 1 to {MAX_REQUESTS} requests, not {}",
            batch.requests.len()
        )));
    }
    let mut statuses: Vec<(String, u16)> = Vec::new();
    for inner in &batch.requests {
        if statuses.iter().any(|(id, _)| *id == inner.id) || inner.id.is_empty() {
            return Err(bad(format!(
                "the batch's request ids must be unique ('{}')",
                inner.id
            )));
        }
        for dependency in &inner.depends_on {
            if !statuses.iter().any(|(id, _)| id == dependency) {
                return Err(bad(format!(
                    "request '{}' depends on '{dependency}', which is not an earlier request",
                    inner.id
                )));
            }
        }
        statuses.push((inner.id.clone(), 0));
    }

    let mut responses = Vec::with_capacity(batch.requests.len());
    for (i, inner) in batch.requests.iter().enumerate() {
        let failed_dependency = inner.depends_on.iter().find(|d| {
            statuses
                .iter()
                .any(|(id, status)| id == *d && !(200..300).contains(status))
        });
        let (status, headers, body) = match failed_dependency {
            Some(d) => {
                let e = ApiError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    format!("The request depends on request '{d}', which failed."),
                );
                (e.status(), HeaderMap::new(), Some(e.body()))
            }
            None => dispatch(&state, root, [authorization.as_ref(), host.as_ref()], inner).await,
        };
        statuses[i].1 = status.as_u16();
        let mut out = json!({ "id": inner.id, "status": status.as_u16() });
        let headers: Map<String, Value> = headers
            .iter()
            .filter(|(name, _)| {
                [header::CONTENT_TYPE, header::LOCATION]
                    .iter()
                    .any(|h| h == name)
                    || name.as_str() == "request-id"
            })
            .filter_map(|(name, v)| Some((name.to_string(), Value::from(v.to_str().ok()?))))
            .collect();
        out["headers"] = Value::Object(headers);
        if let Some(body) = body {
            out["body"] = body;
        }
        responses.push(out);
    }
    Ok(Json(json!({ "responses": responses })).into_response())
}

/// Runs one inner request through the admin API.
async fn dispatch(
    state: &Shared,
    root: &str,
    [authorization, host]: [Option<&HeaderValue>; 2],
    inner: &Inner,
) -> (StatusCode, HeaderMap, Option<Value>) {
    let failed = |e: ApiError| (e.status(), HeaderMap::new(), Some(e.body()));
    let Ok(method) = Method::from_bytes(inner.method.to_ascii_uppercase().as_bytes()) else {
        return failed(bad(format!("'{}' is not an HTTP method", inner.method)));
    };
    let Some(path) = inner_path(root, &inner.url) else {
        return failed(bad(format!("'{}' is not a URL in this API", inner.url)));
    };
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in &inner.headers {
        if let Some(value) = value.as_str() {
            builder = builder.header(name.as_str(), value);
        }
    }
    if let Some(auth) = authorization {
        builder = builder.header(header::AUTHORIZATION, auth.clone());
    }
    if let Some(host) = host {
        builder = builder.header(header::HOST, host.clone());
    }
    let body = match &inner.body {
        None | Some(Value::Null) => Body::empty(),
        Some(Value::String(text)) => Body::from(text.clone()),
        Some(v) => {
            if !inner
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
            }
            Body::from(v.to_string())
        }
    };
    let request = match builder.body(body) {
        Ok(r) => r,
        Err(e) => return failed(bad(format!("request '{}': {e}", inner.id))),
    };
    let Ok(response) = super::service(state.clone()).oneshot(request).await;
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, ANSWER_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return failed(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the answer is too large for a batch",
            ))
        }
    };
    let body = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    };
    (parts.status, parts.headers, body)
}

/// The path an inner URL names: relative to the version root (`/deviceManagement/...`,
/// with or without the leading slash) or absolute (`https://graph.microsoft.com/v1.0/...`).
fn inner_path(root: &str, url: &str) -> Option<String> {
    let mut rest = url.trim();
    if let Some(after_scheme) = rest.split_once("://").map(|(_, r)| r) {
        rest = after_scheme.find('/').map(|i| &after_scheme[i..])?;
    }
    let rest = rest.trim_start_matches('/');
    let rest = ["v1.0/", "beta/"]
        .iter()
        .find_map(|r| rest.strip_prefix(r))
        .unwrap_or(rest);
    if rest.is_empty() || rest.starts_with("$batch") {
        return None;
    }
    Some(format!("/{root}/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_urls_are_relative_to_the_root_or_absolute() {
        assert_eq!(
            inner_path("v1.0", "/deviceManagement/managedDevices?$top=1").as_deref(),
            Some("/v1.0/deviceManagement/managedDevices?$top=1")
        );
        assert_eq!(
            inner_path("beta", "deviceAppManagement/mobileApps").as_deref(),
            Some("/beta/deviceAppManagement/mobileApps")
        );
        assert_eq!(
            inner_path(
                "beta",
                "https://graph.microsoft.com/beta/deviceManagement/deviceHealthScripts"
            )
            .as_deref(),
            Some("/beta/deviceManagement/deviceHealthScripts")
        );
        assert_eq!(inner_path("beta", "/$batch"), None);
        assert_eq!(inner_path("beta", "https://nohost"), None);
    }
}
