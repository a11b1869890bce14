//! The admin API: JSON over HTTP with a bearer token, resources named as Microsoft
//! Graph names them where Graph has them (`/beta/deviceManagement/managedDevices`,
//! `deviceName`, `lastSyncDateTime`, ...). Tenantless-only resources live under
//! `/tenantless/` and the journal under `/testbed/`. Errors are Graph's error JSON
//! (`crate::api_error`).

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use syncml::dm::{Command, Container, Data, Item, ItemCommand, Meta};

use crate::api_error::ApiError;
use crate::journal::{Entry, Expectation, Filter};
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::{CommandRow, Device, LogonRow};

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

pub mod actions;
pub mod batch;
pub mod graph;
pub mod oauth;
pub mod openapi;
pub mod throttle;

/// The admin listener's service: the router behind Graph's addressing (`/v1.0` and
/// `/beta`, trailing slashes ignored).
pub fn service(
    state: Shared,
) -> impl tower::Service<
    axum::extract::Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::ServiceBuilder::new()
        .layer(tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash())
        .map_request(graph::version_root)
        .service(router(state))
}

/// The admin router, bearer token required except for health.
pub fn router(state: Shared) -> Router {
    let guarded = Router::new()
        .route("/beta/deviceManagement/managedDevices", get(list_devices))
        .route("/beta/deviceManagement/roleScopeTags", get(list_scope_tags))
        .route(
            "/beta/deviceManagement/roleScopeTags/{id}",
            get(get_scope_tag),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}",
            get(get_device).delete(delete_device),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/commands",
            get(list_commands).post(queue_command),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/commands/{command}",
            get(get_command),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/sessions",
            get(list_sessions),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/requireIntuneManagementExtension",
            post(require_ime),
        )
        .route(
            "/tenantless/sessions/{session}/messages",
            get(session_messages),
        )
        .route("/beta/$batch", post(batch::run))
        .route("/tenantless/ime", get(get_ime).put(put_ime))
        .route("/tenantless/server", get(server_info))
        .merge(actions::routes())
        .merge(crate::apps::admin_routes())
        .merge(crate::scripts::admin_routes())
        .merge(crate::inventory::admin_routes())
        .merge(crate::directory::admin::routes())
        .route("/testbed/events", get(events))
        .route("/testbed/events/count", get(count_events))
        .route("/testbed/verify", post(verify))
        .route("/testbed/reset", post(reset))
        .route("/testbed/clock", get(crate::worldclock::get_clock))
        .route("/testbed/clock/advance", post(crate::worldclock::advance))
        .route(
            "/tenantless/throttling",
            get(throttle::get)
                .put(throttle::set)
                .delete(throttle::clear),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            throttle::throttle,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), bearer));
    Router::new()
        .route(
            "/testbed/health",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/testbed/ready", get(ready))
        .route("/openapi.json", get(openapi::serve))
        .merge(oauth::routes())
        .merge(crate::apps::blob_routes())
        .merge(crate::console::routes(state.clone()))
        .merge(guarded)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::app::commit_request,
        ))
        .fallback(graph::not_found)
        .method_not_allowed_fallback(graph::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            graph::envelope,
        ))
        .with_state(state)
}

async fn bearer(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let accepted = given.is_some_and(|token| {
        crate::secret::matches(token, &state.config.admin_token) || oauth::valid(&state, token)
    });
    if !accepted {
        return ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
            .into_response();
    }
    next.run(request).await
}

/// A device in Graph's `managedDevice` shape, with the users who signed in on it
/// (`usersLoggedOn`), its compliance from its evaluated policies' `states`, and
/// Tenantless's own facts in the [`crate::odata::DETAILS`] annotation.
pub fn managed_device(d: &Device, logons: &[LogonRow], states: &[String]) -> Value {
    let users: Vec<Value> = logons
        .iter()
        .map(|l| {
            json!({
                "userId": crate::directory::user_object_id(&l.user_principal_name),
                "lastLogOnDateTime": l.last_logon_at,
            })
        })
        .collect();
    let device = json!({
        "@odata.type": "#microsoft.graph.managedDevice",
        "id": d.id,
        "deviceName": d.device_name,
        "userPrincipalName": d.user_principal_name,
        "azureADDeviceId": d.id,
        "enrolledDateTime": d.enrolled_at,
        "lastSyncDateTime": d.last_sync_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "operatingSystem": "Windows",
        "osVersion": d.os_version,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "managementAgent": "mdm",
        "managedDeviceOwnerType": if d.enrollment_type.eq_ignore_ascii_case("Device") { "company" } else { "personal" },
        "complianceState": crate::scripts::compliance::device_state(states.iter().map(String::as_str)),
        "usersLoggedOn": users,
        crate::odata::DETAILS: {
            "enrollmentType": d.enrollment_type,
            "osEdition": d.os_edition,
            "language": d.language,
            "dmVersion": d.dm_version,
            "hardwareDeviceId": d.hw_dev_id,
            "imeRequired": d.ime_required,
            "imeVersion": d.ime_version,
            "imeState": d.ime_state,
        },
    });
    crate::odata::with_entity_defaults(device, "#microsoft.graph.managedDevice", None)
}

async fn device_or_404(state: &Shared, id: &str) -> ApiResult<Device> {
    state
        .store
        .device(&id.to_uppercase())
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no managed device {id}")))
}

/// The managed devices collection.
pub const MANAGED_DEVICES: Collection = Collection {
    context: "deviceManagement/managedDevices",
    expandable: &[],
    searchable: &["deviceName"],
};

/// The one scope tag a tenant always has: everything Tenantless holds carries it
/// (`roleScopeTagIds: ["0"]`), and backup tools read it to name the tags they find.
fn default_scope_tag() -> Value {
    json!({
        "@odata.type": "#microsoft.graph.roleScopeTag",
        "id": "0",
        "displayName": "Default",
        "description": "",
        "isBuiltIn": true,
    })
}

const SCOPE_TAGS: Collection = Collection {
    context: "deviceManagement/roleScopeTags",
    expandable: &[],
    searchable: &["displayName"],
};

async fn list_scope_tags(options: Options) -> Result<Response, ApiError> {
    options.page(vec![default_scope_tag()], &SCOPE_TAGS)
}

async fn get_scope_tag(Path(id): Path<String>, options: Options) -> ApiResult {
    if id != "0" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no role scope tag {id}"),
        ));
    }
    Ok(Json(
        options.entity(default_scope_tag(), SCOPE_TAGS.context),
    ))
}

/// The managed device properties the database can filter on, with their columns.
const DEVICE_COLUMNS: &[(&str, &str)] = &[
    ("id", "id"),
    ("azureADDeviceId", "id"),
    ("deviceName", "device_name"),
    ("userPrincipalName", "user_principal_name"),
    ("osVersion", "os_version"),
    ("manufacturer", "manufacturer"),
    ("model", "model"),
];

/// The managed devices; the part of a `$filter` the database can apply is applied
/// there, so finding a few devices among many does not load them all.
async fn list_devices(State(state): State<Shared>, options: Options) -> Result<Response, ApiError> {
    let conditions = options.pushdown(DEVICE_COLUMNS);
    let rows = if conditions.is_empty() {
        state.store.devices().await?
    } else {
        state.store.devices_where(&conditions).await?
    };
    let logons = state.store.all_logons().await?;
    let compliance = state.store.all_compliance_states().await?;
    let devices: Vec<Value> = rows
        .iter()
        .map(|d| {
            let states = compliance.get(&d.id).map_or(&[][..], Vec::as_slice);
            managed_device(d, logons.get(&d.id).map_or(&[], Vec::as_slice), states)
        })
        .collect();
    options.page(devices, &MANAGED_DEVICES)
}

/// `DELETE managedDevices/{id}`: the device's certificates are revoked and its record
/// removed, so the id may enroll again; the journal keeps its history.
async fn delete_device(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let device = device_or_404(&state, &id).await?;
    state
        .store
        .revoke_certificates(&device.id, "", &state.now_text())
        .await?;
    state.store.delete_device(&device.id).await?;
    state.forget_device(&device.id);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_device(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> ApiResult {
    let device = device_or_404(&state, &id).await?;
    let health = state.store.agent_health(&device.id).await?;
    let logons = state.store.logons(&device.id).await?;
    let states: Vec<String> = state
        .store
        .compliance_states(&device.id)
        .await?
        .into_iter()
        .map(|s| s.state)
        .collect();
    let mut v = managed_device(&device, &logons, &states);
    v[crate::odata::DETAILS]["agentHealth"] = crate::health::agent_health_json(health.as_ref());
    Ok(Json(options.entity(v, MANAGED_DEVICES.context)))
}

fn command_json(c: &CommandRow) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(results) = c
        .results
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
    {
        v["results"] = results;
    }
    v
}

async fn list_commands(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let device = device_or_404(&state, &id).await?;
    let commands: Vec<Value> = state
        .store
        .commands(&device.id)
        .await?
        .iter()
        .map(command_json)
        .collect();
    Ok(Json(json!({ "value": commands })))
}

async fn get_command(
    State(state): State<Shared>,
    Path((id, command)): Path<(String, i64)>,
) -> ApiResult {
    let device = device_or_404(&state, &id).await?;
    match state.store.command(command).await? {
        Some(c) if c.device_id == device.id => Ok(Json(command_json(&c))),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no command {command} for {id}"),
        )),
    }
}

/// A command as an admin writes it: either SyncML (`{"syncml": "<Get>...</Get>"}`) or
/// a verb with items or nested commands.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// One command element, as SyncML XML.
    Raw {
        /// The XML.
        syncml: String,
    },
    /// `{"verb": "Replace", "items": [{"target": "./...", "format": "int", "data": "1"}]}`,
    /// or `{"verb": "Atomic", "commands": [...]}`.
    Verb {
        /// Add, Replace, Get, Delete, Exec, Copy, Atomic or Sequence.
        verb: String,
        /// Items, for the item commands.
        #[serde(default)]
        items: Vec<ItemSpec>,
        /// Nested commands, for Atomic and Sequence.
        #[serde(default)]
        commands: Vec<CommandSpec>,
    },
}

/// One item of a [`CommandSpec`].
#[derive(Debug, Deserialize)]
pub struct ItemSpec {
    /// Target LocURI.
    pub target: String,
    /// Meta Format (chr, int, bool, b64, xml, node).
    pub format: Option<String>,
    /// Meta Type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Data; with format `xml` it is carried inline.
    pub data: Option<String>,
}

impl CommandSpec {
    /// The SyncML command this describes.
    pub fn to_command(&self) -> Result<Command, String> {
        match self {
            CommandSpec::Raw { syncml } => {
                Command::parse(syncml).map_err(|e| format!("syncml: {e}"))
            }
            CommandSpec::Verb {
                verb,
                items,
                commands,
            } => {
                let items = items
                    .iter()
                    .map(|i| {
                        let mut item = Item::target(i.target.clone());
                        if i.format.is_some() || i.type_.is_some() {
                            item.meta = Some(Meta {
                                format: i.format.clone(),
                                type_: i.type_.clone(),
                                ..Meta::default()
                            });
                        }
                        item.data = i.data.clone().map(|d| {
                            if i.format.as_deref() == Some("xml") && d.trim_start().starts_with('<')
                            {
                                Data::Xml(d)
                            } else {
                                Data::Text(d)
                            }
                        });
                        item
                    })
                    .collect();
                let item_command = ItemCommand {
                    items,
                    ..ItemCommand::default()
                };
                let container = || -> Result<Container, String> {
                    Ok(Container {
                        commands: commands
                            .iter()
                            .map(CommandSpec::to_command)
                            .collect::<Result<_, _>>()?,
                        ..Container::default()
                    })
                };
                Ok(match verb.as_str() {
                    "Add" => Command::Add(item_command),
                    "Replace" => Command::Replace(item_command),
                    "Get" => Command::Get(item_command),
                    "Delete" => Command::Delete(item_command),
                    "Exec" => Command::Exec(item_command),
                    "Copy" => Command::Copy(item_command),
                    "Atomic" => Command::Atomic(container()?),
                    "Sequence" => Command::Sequence(container()?),
                    other => return Err(format!("unknown verb {other:?}")),
                })
            }
        }
    }
}

async fn queue_command(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let device = device_or_404(&state, &id).await?;
    let spec: CommandSpec = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not a command: {e}")))?;
    let command = spec
        .to_command()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    // What is queued must read back: refuse inline XML that is not well-formed.
    Command::parse(&command.to_xml()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the command does not serialise: {e}"),
        )
    })?;
    let queued = crate::omadm::queue(&state, &device.id, &command, "admin", None).await?;
    let row = state.store.command(queued).await?.ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "queued command vanished")
    })?;
    Ok((StatusCode::CREATED, Json(command_json(&row))).into_response())
}

async fn list_sessions(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let device = device_or_404(&state, &id).await?;
    Ok(Json(
        json!({ "value": state.store.sessions(&device.id).await? }),
    ))
}

async fn session_messages(State(state): State<Shared>, Path(session): Path<i64>) -> ApiResult {
    if state.store.session(session).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no session {session}"),
        ));
    }
    Ok(Json(
        json!({ "value": state.store.messages(session).await? }),
    ))
}

async fn require_ime(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let device = device_or_404(&state, &id).await?;
    let queued = crate::ime::require(&state, &device.id, crate::ime::Why::Requested).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": queued }))).into_response())
}

fn ime_json(state: &Shared) -> Value {
    let ime = state.ime.lock().unwrap_or_else(|e| e.into_inner());
    let version = ime.current().to_owned();
    json!({
        "version": version,
        "productCode": crate::ime::IME_PRODUCT_CODE,
        "sha256": ime.sha256(&version),
        "contentUrl": format!("{}{}", state.base_url, crate::ime::content_path(&version)),
    })
}

async fn get_ime(State(state): State<Shared>) -> ApiResult {
    Ok(Json(ime_json(&state)))
}

#[derive(Deserialize)]
struct ImeVersion {
    version: String,
}

async fn put_ime(State(state): State<Shared>, Json(body): Json<ImeVersion>) -> ApiResult {
    if body.version.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "version must not be empty",
        ));
    }
    state
        .store
        .set_setting("ime.version", &body.version)
        .await?;
    let queued = crate::ime::roll_out(&state, &body.version).await?;
    let mut v = ime_json(&state);
    v["queuedDevices"] = json!(queued);
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    device: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    app: Option<String>,
    policy: Option<String>,
    state: Option<String>,
    /// A whole filter as JSON (combined with the other parameters).
    filter: Option<String>,
    limit: Option<usize>,
}

impl EventsQuery {
    /// The filter, and a sequence number to start after when `since` is one.
    fn filter(&self) -> Result<(Filter, Option<i64>), ApiError> {
        let mut f: Filter = match &self.filter {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("filter: {e}")))?,
            None => Filter::default(),
        };
        let or = |a: &Option<String>, b: Option<String>| a.clone().or(b);
        f.device = or(&self.device, f.device).map(|d| d.to_uppercase());
        f.kind = or(&self.kind, f.kind);
        f.until = or(&self.until, f.until);
        f.app = or(&self.app, f.app);
        f.policy = or(&self.policy, f.policy);
        f.state = or(&self.state, f.state);
        let mut after = None;
        match &self.since {
            Some(s) if s.parse::<i64>().is_ok() => after = s.parse().ok(),
            Some(s) => f.since = Some(s.clone()),
            None => {}
        }
        Ok((f, after))
    }
}

async fn events(State(state): State<Shared>, Query(q): Query<EventsQuery>) -> ApiResult {
    let (filter, after) = q.filter()?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let entries: Vec<Entry> = state.journal.select(&filter, after, limit).await?;
    Ok(Json(json!({ "value": entries })))
}

async fn count_events(State(state): State<Shared>, Query(q): Query<EventsQuery>) -> ApiResult {
    let (filter, after) = q.filter()?;
    let count = state.journal.count(&filter, after).await?;
    Ok(Json(json!({ "count": count })))
}

/// `POST /testbed/verify`: `{"filter": {...}, "expect": {"atLeast": 1}}`.
#[derive(Debug, Deserialize)]
struct VerifyRequest {
    #[serde(default)]
    filter: Filter,
    expect: Expectation,
}

async fn verify(State(state): State<Shared>, body: axum::body::Bytes) -> ApiResult {
    let req: VerifyRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("verification: {e}")))?;
    let outcome = state.journal.verify(&req.filter, &req.expect).await?;
    Ok(Json(serde_json::to_value(outcome).unwrap_or(Value::Null)))
}

/// `POST /testbed/reset` body (optional): `{"everything": true, "now": "..."}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ResetRequest {
    /// Forget devices, apps, scripts, assignments and states too, not only the journal.
    everything: bool,
    /// Set the (manual) world clock to this time, backwards too.
    now: Option<String>,
}

/// `POST /testbed/reset`: forgets the journal; with `everything`, the whole world (a
/// fresh start for the next scenario on a server that keeps running: the CA, the
/// configuration and the IME release stay).
async fn reset(State(state): State<Shared>, body: axum::body::Bytes) -> ApiResult {
    let req: ResetRequest = if body.is_empty() {
        ResetRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("reset: {e}")))?
    };
    let now = match &req.now {
        None => None,
        Some(t) => Some(crate::clock::parse(t).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("now {t:?} is not an RFC 3339 time"),
            )
        })?),
    };
    if let Some(now) = now {
        if !state.clock.set(now) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "only a manual world clock can be set (start the server with --clock manual)",
            ));
        }
    }
    state.journal.reset().await?;
    if req.everything {
        state.store.wipe().await?;
        state.forget_cached();
    }
    Ok(Json(
        json!({ "reset": true, "everything": req.everything, "now": crate::clock::format(state.now()) }),
    ))
}

/// `GET /tenantless/server`: what a remote testbed needs to bring devices to this
/// server: the URL devices use, the CA they must trust, the clock's mode.
async fn server_info(State(state): State<Shared>) -> ApiResult {
    Ok(Json(json!({
        "deviceBaseUrl": state.base_url,
        "caPem": state.ca.cert_pem(),
        "clock": state.clock.mode(),
        "now": crate::clock::format(state.now()),
    })))
}

async fn ready(State(state): State<Shared>) -> Response {
    if state.store.ping().await {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer",
        )
        .into_response()
    }
}
