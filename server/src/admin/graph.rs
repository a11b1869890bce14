//! What makes the admin listener answer as Microsoft Graph does, whatever the route:
//! both version roots (`/v1.0` and `/beta` name the same resources), a trailing slash
//! ignored, `request-id` and `client-request-id` on every answer, and every failure
//! (including axum's own 404, 405, 413, 415 and query rejections) as Graph's error JSON
//! with `innerError`.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::api_error::{code_for, ApiError, ForeignErrorBody, GraphErrorBody};
use crate::odata::Address;
use crate::state::Shared;

/// The largest error body read back to add `innerError` (ours are far smaller).
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The largest created entity read back for its id (an app with its rules, a script).
const CREATED_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Reads how the client addressed its resource into an [`Address`] (a request
/// extension) and rewrites the path to the route that serves it: `/v1.0/...` is served
/// by the `/beta/...` routes, a type-cast segment (`microsoft.graph.win32LobApp`, or
/// `graph.` for short) and a trailing `/$count` leave the path. Runs before routing.
pub fn version_root(mut request: Request) -> Request {
    let path = request.uri().path().to_owned();
    let (root, rest) = match path.strip_prefix("/v1.0") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => ("v1.0", rest),
        _ => ("beta", path.strip_prefix("/beta").unwrap_or(&path)),
    };
    let mut segments: Vec<&str> = rest.split('/').collect();
    let count_only = segments
        .last()
        .is_some_and(|s| *s == "$count" || s.eq_ignore_ascii_case("%24count"));
    if count_only {
        segments.pop();
    }
    let mut cast = None;
    let last = segments.len().saturating_sub(1);
    let mut kept = Vec::with_capacity(segments.len());
    for (i, segment) in segments.into_iter().enumerate() {
        let named = segment
            .strip_prefix("microsoft.graph.")
            .or_else(|| segment.strip_prefix("graph."));
        match named {
            Some(name) if i > 1 && !name.is_empty() => {
                if i == last {
                    cast = Some(format!("microsoft.graph.{name}"));
                }
            }
            // `$ref` (members by reference) as some clients escape it.
            _ if segment.eq_ignore_ascii_case("%24ref") => kept.push("$ref"),
            _ => kept.push(segment),
        }
    }
    let routed = if path.starts_with("/v1.0") || path.starts_with("/beta") {
        format!("/beta{}", kept.join("/"))
    } else {
        kept.join("/")
    };
    let rewritten = match request.uri().query() {
        Some(q) => format!("{routed}?{q}"),
        None => routed,
    };
    if let Ok(uri) = rewritten.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request.extensions_mut().insert(Address {
        root,
        path,
        cast,
        count_only,
    });
    request
}

/// Adds Graph's request ids to every answer and turns every failure into Graph's error
/// JSON with `innerError` (date, request-id, client-request-id).
pub async fn envelope(State(state): State<Shared>, request: Request, next: Next) -> Response {
    // Not from the seeded generator: ids in headers are not part of the world.
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| request_id.clone(), str::to_owned);
    let created_under = created_location_base(&request);
    let response = next.run(request).await;
    let mut response = if response.status() == StatusCode::CREATED {
        with_location(response, created_under).await
    } else if (response.status().is_client_error() || response.status().is_server_error())
        && response.extensions().get::<ForeignErrorBody>().is_none()
    {
        let inner = json!({
            "date": crate::clock::format(state.now()),
            "request-id": request_id,
            "client-request-id": client_request_id,
        });
        as_graph_error(response, inner).await
    } else {
        response
    };
    for (name, value) in [
        ("request-id", &request_id),
        ("client-request-id", &client_request_id),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Where a POST that creates would put its entity: the collection's absolute URL as
/// the client addressed it.
fn created_location_base(request: &Request) -> Option<String> {
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    let path = request
        .extensions()
        .get::<Address>()
        .map_or_else(|| request.uri().path().to_owned(), |a| a.path.clone());
    Some(format!(
        "{}://{host}{path}",
        crate::tls::scheme(request.extensions())
    ))
}

/// A 201 answer gains `Location` (the collection's URL and the new entity's id), as
/// Graph's do, unless its handler set one.
async fn with_location(response: Response, base: Option<String>) -> Response {
    if response.headers().contains_key(header::LOCATION) {
        return response;
    }
    let Some(base) = base else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, CREATED_BODY_LIMIT).await.unwrap_or_default();
    let id = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned));
    if let Some(location) = id.and_then(|id| HeaderValue::from_str(&format!("{base}/{id}")).ok()) {
        parts.headers.insert(header::LOCATION, location);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The failure as Graph's error JSON: ours gain `innerError`; axum's own rejections (plain
/// text or empty) become Graph errors carrying their text as the message.
async fn as_graph_error(response: Response, inner: Value) -> Response {
    let (mut parts, body) = response.into_parts();
    let ours = parts.extensions.get::<GraphErrorBody>().is_some();
    let bytes = to_bytes(body, ERROR_BODY_LIMIT).await.unwrap_or_default();
    let mut error = if ours {
        serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if !error["error"].is_object() {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        let message = if text.is_empty() {
            parts
                .status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_owned()
        } else {
            text
        };
        error = json!({ "error": { "code": code_for(parts.status), "message": message } });
    }
    error["error"]["innerError"] = inner;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.insert(GraphErrorBody);
    Response::from_parts(parts, Body::from(error.to_string()))
}

/// The answer for a path no route has.
pub async fn not_found(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "Resource not found for the segment '{}'.",
            last_segment(uri.path())
        ),
    )
    .into_response()
}

/// The answer for a method a route does not take.
pub async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The HTTP method is not allowed on this resource.",
    )
    .into_response()
}

fn last_segment(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(uri: &str) -> (String, Address) {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let request = version_root(request);
        let address = request.extensions().get::<Address>().unwrap().clone();
        (request.uri().to_string(), address)
    }

    #[test]
    fn v1_0_reaches_the_beta_routes_and_remembers_its_root() {
        let (uri, address) = routed("/v1.0/deviceManagement/managedDevices?$top=2");
        assert_eq!(uri, "/beta/deviceManagement/managedDevices?$top=2");
        assert_eq!(address.root, "v1.0");
        assert_eq!(address.path, "/v1.0/deviceManagement/managedDevices");
        let (uri, address) = routed("/beta/deviceManagement/managedDevices");
        assert_eq!(uri, "/beta/deviceManagement/managedDevices");
        assert_eq!(address.root, "beta");
        assert_eq!(routed("/v1.0x/a").1.root, "beta");
        assert_eq!(routed("/testbed/events?x=1").0, "/testbed/events?x=1");
    }

    #[test]
    fn casts_and_count_segments_leave_the_path() {
        let (uri, address) =
            routed("/beta/deviceAppManagement/mobileApps/microsoft.graph.win32LobApp");
        assert_eq!(uri, "/beta/deviceAppManagement/mobileApps");
        assert_eq!(address.cast.as_deref(), Some("microsoft.graph.win32LobApp"));
        let (uri, address) =
            routed("/v1.0/deviceAppManagement/mobileApps/graph.win32LobApp/$count");
        assert_eq!(uri, "/beta/deviceAppManagement/mobileApps");
        assert!(address.count_only);
        assert_eq!(address.cast.as_deref(), Some("microsoft.graph.win32LobApp"));
        let (uri, address) = routed(
            "/beta/deviceAppManagement/mobileApps/A1/microsoft.graph.win32LobApp/contentVersions",
        );
        assert_eq!(
            uri,
            "/beta/deviceAppManagement/mobileApps/A1/contentVersions"
        );
        assert_eq!(address.cast, None);
    }

    #[test]
    fn a_missing_resource_names_its_segment() {
        assert_eq!(last_segment("/beta/deviceManagement/nothing/"), "nothing");
    }
}
