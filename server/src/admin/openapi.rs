//! The admin API described as OpenAPI 3.0, served at `/openapi.json` (no token needed:
//! it says what exists, not what is in it), for people importing it into their tools
//! and for schemathesis, which CI points at it. [`OPERATIONS`] is the one list; a test
//! calls every operation it names and fails on one the router does not serve.

use axum::Json;
use serde_json::{json, Map, Value};

/// What an operation answers when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with one entity (a JSON object).
    Entity,
    /// 200 with a collection (`value`, `@odata.nextLink`, `@odata.count`), taking the
    /// OData query options.
    Collection,
    /// 201 with the created entity.
    Created,
    /// 204, no body.
    NoContent,
    /// 200 with JSON that is not an entity (a report, a batch's answers).
    Other,
}

/// What an operation takes as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Nothing.
    Nothing,
    /// A JSON object, with these properties required.
    Json(&'static [&'static str]),
    /// Bytes (a `.intunewin`, a block).
    Bytes,
    /// A form (`application/x-www-form-urlencoded`).
    Form,
}

/// One operation of the admin API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The path as Graph clients address it under `/beta` (also served under `/v1.0`).
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Its body.
    pub takes: Takes,
    /// Its success.
    pub answer: Answer,
    /// Whether the bearer token is needed.
    pub bearer: bool,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    takes: Takes,
    answer: Answer,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        takes,
        answer,
        bearer: true,
    }
}

const fn open(mut o: Operation) -> Operation {
    o.bearer = false;
    o
}

use Answer::*;
use Takes::{Bytes, Form, Nothing};

const APP: &[&str] = &["@odata.type", "displayName", "installCommandLine"];
const SCRIPT: &[&str] = &["displayName"];
const GROUP: &[&str] = &["displayName"];
const REF: &[&str] = &["@odata.id"];

/// Every operation of the admin listener.
#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op("GET", "/beta/deviceManagement/managedDevices", "List managed devices", Nothing, Collection),
    op("GET", "/beta/deviceManagement/managedDevices/{id}", "Get a managed device", Nothing, Entity),
    op("DELETE", "/beta/deviceManagement/managedDevices/{id}", "Forget a managed device", Nothing, NoContent),
    op("GET", "/beta/deviceManagement/managedDevices/{id}/commands", "A device's OMA-DM command queue", Nothing, Other),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/commands", "Queue an OMA-DM command", Takes::Json(&["verb"]), Created),
    op("GET", "/beta/deviceManagement/managedDevices/{id}/commands/{command}", "One queued command", Nothing, Other),
    op("GET", "/beta/deviceManagement/managedDevices/{id}/sessions", "A device's management sessions", Nothing, Other),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/requireIntuneManagementExtension", "Deliver the IME to a device", Nothing, Other),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/syncDevice", "Push a sync", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/rebootNow", "Push a restart", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/shutDown", "Push a shutdown", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/retire", "Retire (unenroll) a device", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/wipe", "Wipe a device", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/managedDevices/{id}/remoteLock", "Lock a device", Nothing, NoContent),
    op("GET", "/beta/deviceManagement/managedDevices/{id}/detectedApps", "A device's Discovered apps", Nothing, Collection),
    op("GET", "/beta/deviceManagement/detectedApps", "Discovered apps", Nothing, Collection),
    op("GET", "/beta/deviceManagement/detectedApps/{id}/managedDevices", "The devices that have a Discovered app", Nothing, Collection),
    op("GET", "/beta/deviceManagement/roleScopeTags", "Scope tags", Nothing, Collection),
    op("GET", "/beta/deviceManagement/roleScopeTags/{id}", "A scope tag", Nothing, Entity),
    op("GET", "/beta/deviceAppManagement/mobileApps", "List Win32 apps", Nothing, Collection),
    op("POST", "/beta/deviceAppManagement/mobileApps", "Create a win32LobApp", Takes::Json(APP), Created),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}", "Get an app", Nothing, Entity),
    op("PATCH", "/beta/deviceAppManagement/mobileApps/{id}", "Change an app (committedContentVersion makes a content version current)", Takes::Json(&[]), NoContent),
    op("DELETE", "/beta/deviceAppManagement/mobileApps/{id}", "Delete an app", Nothing, NoContent),
    op("PUT", "/beta/deviceAppManagement/mobileApps/{id}/content", "Upload a whole .intunewin (Tenantless's shortcut)", Bytes, Other),
    op("POST", "/beta/deviceAppManagement/mobileApps/{id}/assign", "Assign an app", Takes::Json(&[]), NoContent),
    op("POST", "/beta/deviceAppManagement/mobileApps/{id}/updateRelationships", "Set dependencies and supersedence", Takes::Json(&[]), NoContent),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/deviceStatuses", "An app's install state per device", Nothing, Collection),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/userStatuses", "An app's install state per user", Nothing, Collection),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/assignments", "An app's assignments", Nothing, Collection),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/assignments/{assignment}", "One assignment", Nothing, Entity),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions", "An app's content versions", Nothing, Collection),
    op("POST", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions", "Start a content version", Takes::Json(&[]), Created),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/{version}", "One content version", Nothing, Entity),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/{version}/files", "A content version's files", Nothing, Collection),
    op("POST", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/{version}/files", "Declare a content file (then put it to its azureStorageUri)", Takes::Json(&["name", "size", "sizeEncrypted"]), Created),
    op("GET", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/{version}/files/{file}", "A content file and its upload state", Nothing, Entity),
    op("POST", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/{version}/files/{file}/renewUpload", "Renew a file's upload URI", Nothing, NoContent),
    op("POST", "/beta/deviceAppManagement/mobileApps/{id}/contentVersions/{version}/files/{file}/commit", "Commit a file with its fileEncryptionInfo", Takes::Json(&["fileEncryptionInfo"]), NoContent),
    open(op("PUT", "/tenantless/blobs/{blob}", "A content file's upload URI: Put Block, Put Block List, Put Blob (signed; Azure Storage's errors)", Bytes, NoContent)),
    op("GET", "/beta/deviceManagement/deviceManagementScripts", "List platform scripts", Nothing, Collection),
    op("POST", "/beta/deviceManagement/deviceManagementScripts", "Create a platform script", Takes::Json(SCRIPT), Created),
    op("GET", "/beta/deviceManagement/deviceManagementScripts/{id}", "Get a platform script", Nothing, Entity),
    op("PATCH", "/beta/deviceManagement/deviceManagementScripts/{id}", "Change a platform script", Takes::Json(&[]), NoContent),
    op("DELETE", "/beta/deviceManagement/deviceManagementScripts/{id}", "Delete a platform script", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/deviceManagementScripts/{id}/assign", "Assign a platform script", Takes::Json(&[]), NoContent),
    op("GET", "/beta/deviceManagement/deviceManagementScripts/{id}/assignments", "A platform script's assignments", Nothing, Collection),
    op("GET", "/beta/deviceManagement/deviceManagementScripts/{id}/assignments/{assignment}", "One assignment", Nothing, Entity),
    op("GET", "/beta/deviceManagement/deviceManagementScripts/{id}/deviceRunStates", "A platform script's results per device", Nothing, Collection),
    op("GET", "/beta/deviceManagement/deviceHealthScripts", "List remediations", Nothing, Collection),
    op("POST", "/beta/deviceManagement/deviceHealthScripts", "Create a remediation", Takes::Json(SCRIPT), Created),
    op("GET", "/beta/deviceManagement/deviceHealthScripts/{id}", "Get a remediation", Nothing, Entity),
    op("PATCH", "/beta/deviceManagement/deviceHealthScripts/{id}", "Change a remediation", Takes::Json(&[]), NoContent),
    op("DELETE", "/beta/deviceManagement/deviceHealthScripts/{id}", "Delete a remediation", Nothing, NoContent),
    op("POST", "/beta/deviceManagement/deviceHealthScripts/{id}/assign", "Assign a remediation", Takes::Json(&[]), NoContent),
    op("GET", "/beta/deviceManagement/deviceHealthScripts/{id}/assignments", "A remediation's assignments", Nothing, Collection),
    op("GET", "/beta/deviceManagement/deviceHealthScripts/{id}/assignments/{assignment}", "One assignment", Nothing, Entity),
    op("GET", "/beta/deviceManagement/deviceHealthScripts/{id}/deviceRunStates", "A remediation's results per device", Nothing, Collection),
    op("GET", "/beta/groups", "List groups", Nothing, Collection),
    op("POST", "/beta/groups", "Create a security group", Takes::Json(GROUP), Created),
    op("GET", "/beta/groups/{id}", "Get a group", Nothing, Entity),
    op("PATCH", "/beta/groups/{id}", "Change a group", Takes::Json(&[]), NoContent),
    op("DELETE", "/beta/groups/{id}", "Delete a group", Nothing, NoContent),
    op("GET", "/beta/groups/{id}/members", "A group's members", Nothing, Collection),
    op("POST", "/beta/groups/{id}/members/$ref", "Add a member by reference", Takes::Json(REF), NoContent),
    op("DELETE", "/beta/groups/{id}/members/$ref", "Remove a member named by $id", Nothing, NoContent),
    op("DELETE", "/beta/groups/{id}/members/{member}/$ref", "Remove a member", Nothing, NoContent),
    op("GET", "/beta/devices", "Entra device objects", Nothing, Collection),
    op("GET", "/beta/devices/{id}", "An Entra device object", Nothing, Entity),
    op("GET", "/beta/devices/{id}/memberOf", "A device's groups", Nothing, Collection),
    op("GET", "/beta/users", "Users", Nothing, Collection),
    op("GET", "/beta/users/{id}", "A user (object id or UPN)", Nothing, Entity),
    op("GET", "/beta/users/{id}/memberOf", "A user's groups", Nothing, Collection),
    op("POST", "/beta/$batch", "Up to 20 requests in one", Takes::Json(&["requests"]), Other),
    op("GET", "/tenantless/ime", "The IME version delivered", Nothing, Other),
    op("PUT", "/tenantless/ime", "Roll out an IME version", Takes::Json(&["version"]), Other),
    op("GET", "/tenantless/server", "This server", Nothing, Other),
    op("GET", "/tenantless/sessions/{session}/messages", "A management session's SyncML", Nothing, Other),
    op("GET", "/tenantless/throttling", "The admin API's fault mode", Nothing, Other),
    op("PUT", "/tenantless/throttling", "Throttle or fail routes on purpose", Takes::Json(&["rules"]), Other),
    op("DELETE", "/tenantless/throttling", "Turn the fault mode off", Nothing, Other),
    op("GET", "/testbed/events", "The journal", Nothing, Other),
    op("GET", "/testbed/events/count", "How many journal events match", Nothing, Other),
    op("POST", "/testbed/verify", "Check expectations against the journal", Takes::Json(&[]), Other),
    op("POST", "/testbed/reset", "Empty the world", Takes::Json(&[]), Other),
    op("GET", "/testbed/clock", "The world clock", Nothing, Other),
    op("POST", "/testbed/clock/advance", "Advance a manual world clock", Takes::Json(&[]), Other),
    open(op("GET", "/testbed/health", "Liveness", Nothing, Other)),
    open(op("GET", "/testbed/ready", "Readiness (the database answers)", Nothing, Other)),
    open(op("GET", "/{tenant}/v2.0/.well-known/openid-configuration", "Entra ID's OpenID configuration", Nothing, Other)),
    open(op("POST", "/{tenant}/oauth2/v2.0/token", "An admin token by client credentials", Form, Other)),
    open(op("GET", "/openapi.json", "This document", Nothing, Other)),
];

/// The OData query options a collection takes.
fn query_options() -> Vec<Value> {
    let text = |name: &str, about: &str| json!({ "name": name, "in": "query", "required": false, "description": about, "schema": { "type": "string" } });
    let number = |name: &str, about: &str| json!({ "name": name, "in": "query", "required": false, "description": about, "schema": { "type": "integer", "minimum": 0 } });
    vec![
        text(
            "$filter",
            "comparisons, and/or/not, startswith, contains, isof, ...",
        ),
        text("$select", "properties to keep, comma-separated"),
        text("$orderby", "properties, asc or desc"),
        text("$search", "\"text\" or \"property:text\""),
        text("$expand", "assignments (apps)"),
        text("$count", "true adds @odata.count"),
        text("$skiptoken", "from @odata.nextLink"),
        number("$top", "at most this many (pages hold at most 1000)"),
        number("$skip", "skip this many"),
    ]
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "minLength": 1 } })
        })
        .collect()
}

fn request_body(takes: Takes) -> Option<Value> {
    match takes {
        Takes::Nothing => None,
        Takes::Json(required) => Some(json!({
            "required": true,
            "content": { "application/json": { "schema": {
                "type": "object", "required": required, "additionalProperties": true,
                "properties": required.iter().map(|r| ((*r).to_owned(), json!({}))).collect::<Map<_, _>>(),
            } } },
        })),
        Takes::Bytes => Some(json!({
            "required": true,
            "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } },
        })),
        Takes::Form => Some(json!({
            "required": true,
            "content": { "application/x-www-form-urlencoded": { "schema": {
                "type": "object",
                "properties": { "grant_type": { "type": "string" }, "client_id": { "type": "string" }, "client_secret": { "type": "string" }, "scope": { "type": "string" } },
            } } },
        })),
    }
}

fn responses(o: &Operation) -> Value {
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let body = |name: &str| json!({ "application/json": { "schema": schema(name) } });
    let mut out = Map::new();
    let (code, answer) = match o.answer {
        Entity => (
            "200",
            json!({ "description": "the entity", "content": body("Entity") }),
        ),
        Collection => (
            "200",
            json!({ "description": "a page of the collection", "content": body("Collection") }),
        ),
        Created => (
            "201",
            json!({ "description": "created", "content": body("Entity") }),
        ),
        NoContent => ("204", json!({ "description": "done" })),
        Other => (
            "200",
            json!({ "description": "the answer", "content": body("Json") }),
        ),
    };
    out.insert(code.into(), answer);
    // Graph's error JSON for every failure, except where another protocol speaks.
    let failure = if o.path.starts_with("/tenantless/blobs/") {
        json!({ "description": "Azure Storage's error", "content": { "application/xml": { "schema": { "type": "string" } } } })
    } else if o.path.starts_with("/{tenant}/") {
        json!({ "description": "Entra ID's error", "content": body("Json") })
    } else {
        json!({ "description": "Graph's error", "content": body("GraphError") })
    };
    out.insert("default".into(), failure);
    Value::Object(out)
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut operation = json!({
            "summary": o.summary,
            "operationId": format!("{} {}", o.method, o.path),
            "responses": responses(o),
        });
        let mut parameters = path_parameters(o.path);
        if o.answer == Collection {
            parameters.extend(query_options());
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = request_body(o.takes) {
            operation["requestBody"] = body;
        }
        if !o.bearer {
            operation["security"] = json!([]);
        }
        let item = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        item[o.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tenantless admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Microsoft Graph's Intune and Entra resources as Tenantless serves them (every /beta path is also under /v1.0), and Tenantless's own /tenantless and /testbed endpoints. See docs/graph-clients.md.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Entity": { "type": "object" },
                "Json": {},
                "Collection": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {
                        "value": { "type": "array", "items": { "type": "object" } },
                        "@odata.context": { "type": "string" },
                        "@odata.nextLink": { "type": "string" },
                        "@odata.count": { "type": "integer" },
                    },
                },
                "GraphError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string" },
                            "message": { "type": "string" },
                            "innerError": { "type": "object" },
                        },
                    } },
                },
            },
        },
        "paths": paths,
    })
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}
