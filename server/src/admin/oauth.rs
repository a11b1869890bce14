//! Sign-in like Entra ID, for Graph clients that only know how to get a token from an
//! authority: `/{tenant}/v2.0/.well-known/openid-configuration` and the client
//! credentials grant at `/{tenant}/oauth2/v2.0/token`. The one client is the admin
//! API's (`--admin-client-id`, its secret the admin token); the token is a JWT in
//! Entra's app-token shape, signed with a key derived from the admin token, so it
//! outlives a server restart and stops working when the admin token changes. Lifetimes
//! are real time (clients cache tokens by their own clocks, not the world's). Failures
//! are Entra's error JSON (`error`, `error_description` with an `AADSTS` code,
//! `error_codes`, ...).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::state::Shared;

/// How long a token is good for, seconds (Entra's usual app token: about an hour).
pub const LIFETIME_SECONDS: i64 = 3599;
/// The audience tokens are for.
const GRAPH: &str = "https://graph.microsoft.com";

/// The sign-in routes (no bearer token needed).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token))
}

/// What an app token says (the claims Graph clients and tools read).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    appid: String,
    app_displayname: String,
    idtyp: String,
    oid: String,
    sub: String,
    tid: String,
    ver: String,
}

/// The signing key: derived from the admin token, which is the client's secret.
fn key_material(state: &Shared) -> Vec<u8> {
    Sha256::digest(format!("tenantless oauth2 {}", state.config.admin_token).as_bytes()).to_vec()
}

/// True when `token` is an unexpired app token this server issued.
pub fn valid(state: &Shared, token: &str) -> bool {
    verify(&key_material(state), token, crate::clock::SystemClock.now()).is_some()
}

fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[GRAPH]);
    // The expiry is checked here against the real clock (no leeway).
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation).ok()?;
    (data.claims.exp > now.timestamp() && data.claims.nbf <= now.timestamp()).then_some(data.claims)
}

fn issue(key: &[u8], tenant: &str, client_id: &str, now: DateTime<Utc>) -> Option<String> {
    let t = now.timestamp();
    let claims = Claims {
        aud: GRAPH.into(),
        iss: format!("https://sts.windows.net/{tenant}/"),
        iat: t,
        nbf: t,
        exp: t + LIFETIME_SECONDS,
        appid: client_id.into(),
        app_displayname: "Tenantless admin".into(),
        idtyp: "app".into(),
        oid: client_id.into(),
        sub: client_id.into(),
        tid: tenant.into(),
        ver: "1.0".into(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .ok()
}

async fn openid_configuration(Path(tenant): Path<String>, request: Request) -> Json<Value> {
    let base = crate::tls::origin(request.headers(), request.extensions());
    let at = |path: &str| format!("{base}/{tenant}/{path}");
    Json(json!({
        "token_endpoint": at("oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": at("v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": at("oauth2/v2.0/authorize"),
        "device_authorization_endpoint": at("oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": at("oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver", "oid"],
        "tenant_region_scope": null,
        "cloud_instance_name": "tenantless",
        "cloud_graph_host_name": base,
        "msgraph_host": base,
        "rbac_url": base,
    }))
}

/// The token request's form fields.
#[derive(Debug, Default)]
pub struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

impl TokenRequest {
    /// The fields of an `application/x-www-form-urlencoded` body (others ignored).
    pub fn parse(body: &[u8]) -> Self {
        let mut form = TokenRequest::default();
        for (name, value) in form_urlencoded::parse(body) {
            let field = match name.as_ref() {
                "grant_type" => &mut form.grant_type,
                "client_id" => &mut form.client_id,
                "client_secret" => &mut form.client_secret,
                "scope" => &mut form.scope,
                _ => continue,
            };
            *field = Some(value.into_owned());
        }
        form
    }
}

/// An Entra error answer.
fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let now = crate::clock::SystemClock.now();
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let description = format!(
        "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
    );
    (
        status,
        axum::Extension(crate::api_error::ForeignErrorBody),
        Json(json!({
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        })),
    )
        .into_response()
}

/// The client credentials grant: the admin client's id and secret (in the form, or
/// HTTP Basic) for a token to Graph (`scope` `<resource>/.default`).
async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form = TokenRequest::parse(&body);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some((id, secret)) = authorization.and_then(basic_credentials) {
        form.client_id.get_or_insert(id);
        form.client_secret.get_or_insert(secret);
    }
    let grant = form.grant_type.as_deref().unwrap_or_default();
    if grant.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    if grant != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let client_id = form.client_id.unwrap_or_default();
    if !client_id.eq_ignore_ascii_case(&state.config.admin_client_id) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    let secret = form.client_secret.unwrap_or_default();
    if !crate::secret::matches(&secret, &state.config.admin_token) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let scope = form.scope.unwrap_or_default();
    if !scope.split_whitespace().any(|s| s.ends_with("/.default")) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        );
    }
    let now = crate::clock::SystemClock.now();
    let Some(access_token) = issue(&key_material(&state), &tenant, &client_id, now) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "There was an error issuing a token.",
        );
    };
    (
        [(header::CACHE_CONTROL, "no-store, no-cache")],
        Json(json!({
            "token_type": "Bearer",
            "expires_in": LIFETIME_SECONDS,
            "ext_expires_in": LIFETIME_SECONDS,
            "access_token": access_token,
        })),
    )
        .into_response()
}

/// An `Authorization` header's `Basic base64(id:secret)`, form-decoded as OAuth says.
pub fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        // One value: an `&` left unencoded is part of it.
        form_urlencoded::parse(format!("v={}", s.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_token_is_good_for_its_lifetime_and_no_longer() {
        let issued = at("2026-12-01T10:00:00Z");
        let token = issue(KEY, "contoso", "tenantless", issued).unwrap();
        let claims = verify(KEY, &token, at("2026-12-01T10:59:58Z")).unwrap();
        assert_eq!(
            (
                claims.aud.as_str(),
                claims.tid.as_str(),
                claims.idtyp.as_str()
            ),
            (GRAPH, "contoso", "app")
        );
        assert!(verify(KEY, &token, at("2026-12-01T10:59:59Z")).is_none());
        assert!(verify(KEY, &token, at("2026-12-01T09:59:59Z")).is_none());
    }

    #[test]
    fn a_token_from_another_key_or_altered_is_refused() {
        let now = at("2026-12-01T10:00:00Z");
        let token = issue(KEY, "contoso", "tenantless", now).unwrap();
        assert!(verify(b"another key", &token, now).is_none());
        let mut altered = token.clone().into_bytes();
        let middle = token.find('.').unwrap() + 3;
        altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
        assert!(verify(KEY, &String::from_utf8(altered).unwrap(), now).is_none());
        assert!(verify(KEY, "not a token", now).is_none());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%20app:s%3Acret");
        assert_eq!(
            basic_credentials(&format!("Basic {encoded}")),
            Some(("my app".into(), "s:cret".into()))
        );
        let raw = base64::engine::general_purpose::STANDARD.encode("app:a&b=c");
        assert_eq!(
            basic_credentials(&format!("Basic {raw}")),
            Some(("app".into(), "a&b=c".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
