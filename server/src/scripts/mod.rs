//! Scripts the IME runs: platform scripts (`deviceManagementScripts`, delivered by
//! `PolicyRequest`), remediations (`deviceHealthScripts`, delivered by `GetScript`) and
//! custom compliance (`deviceComplianceScripts` named by `deviceCompliancePolicies`,
//! delivered by `GetScript` too).
//! Both share the admin CRUD here: Graph JSON kept as given, base64 contents checked,
//! a new revision on each change. Targets are read as for apps.

pub mod compliance;
pub mod esp;
pub mod platform;
pub mod remediation;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::{AppRow, AssignmentRow, Device, ScriptKind, StoreError};

/// The admin routes of both kinds.
pub fn admin_routes() -> Router<Shared> {
    Router::new()
        .merge(crud::<Platform>())
        .merge(crud::<Remediation>())
        .merge(crud::<ComplianceScript>())
        .merge(crud::<CompliancePolicy>())
        .merge(crud::<EspProfile>())
        .merge(platform::admin_routes())
        .merge(remediation::admin_routes())
        .merge(compliance::admin_routes())
        .merge(esp::admin_routes())
}

/// What differs between the two kinds' admin resources.
trait Kind: Send + Sync + 'static {
    const PATH: &'static str;
    const ODATA_TYPE: &'static str;
    const NOUN: &'static str;
    const STORE: ScriptKind;
    /// Fields that must hold base64 (and at least the first must be present).
    const CONTENTS: &'static [&'static str];
    /// The Graph type of its assignments.
    const ASSIGNMENT_TYPE: &'static str;
    /// `enforceSignatureCheck` when a new script does not say: on for platform scripts
    /// ("Enforce script signature is now enabled by default", as the talk shows the
    /// admin center creating them), off for remediations.
    const ENFORCE_SIGNATURE_BY_DEFAULT: bool = false;
    /// What an assignment's stored settings add to its Graph JSON.
    fn assignment_settings(_settings: &Value) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
    /// What the kind checks beyond a name and its contents.
    fn check(_body: &Value) -> Result<(), ApiError> {
        Ok(())
    }
}

struct Platform;
impl Kind for Platform {
    const PATH: &'static str = platform::PATH;
    const ODATA_TYPE: &'static str = "#microsoft.graph.deviceManagementScript";
    const NOUN: &'static str = "device management script";
    const STORE: ScriptKind = ScriptKind::Platform;
    const CONTENTS: &'static [&'static str] = &["scriptContent"];
    const ASSIGNMENT_TYPE: &'static str = "#microsoft.graph.deviceManagementScriptAssignment";
    const ENFORCE_SIGNATURE_BY_DEFAULT: bool = true;
}

struct Remediation;
impl Kind for Remediation {
    const PATH: &'static str = remediation::PATH;
    const ODATA_TYPE: &'static str = "#microsoft.graph.deviceHealthScript";
    const NOUN: &'static str = "device health script";
    const STORE: ScriptKind = ScriptKind::Remediation;
    const CONTENTS: &'static [&'static str] =
        &["detectionScriptContent", "remediationScriptContent"];
    const ASSIGNMENT_TYPE: &'static str = "#microsoft.graph.deviceHealthScriptAssignment";
    fn assignment_settings(settings: &Value) -> Vec<(&'static str, Value)> {
        vec![
            (
                "runRemediationScript",
                json!(settings["runRemediationScript"] != false),
            ),
            (
                "runSchedule",
                remediation::run_schedule(&settings["schedule"]),
            ),
        ]
    }
}

struct ComplianceScript;
impl Kind for ComplianceScript {
    const PATH: &'static str = compliance::SCRIPTS_PATH;
    const ODATA_TYPE: &'static str = "#microsoft.graph.deviceComplianceScript";
    const NOUN: &'static str = "device compliance script";
    const STORE: ScriptKind = ScriptKind::ComplianceScript;
    const CONTENTS: &'static [&'static str] = &["detectionScriptContent"];
    const ASSIGNMENT_TYPE: &'static str = "#microsoft.graph.deviceHealthScriptAssignment";
}

struct CompliancePolicy;
impl Kind for CompliancePolicy {
    const PATH: &'static str = compliance::POLICIES_PATH;
    const ODATA_TYPE: &'static str = "#microsoft.graph.windows10CompliancePolicy";
    const NOUN: &'static str = "device compliance policy";
    const STORE: ScriptKind = ScriptKind::CompliancePolicy;
    const CONTENTS: &'static [&'static str] = &[];
    const ASSIGNMENT_TYPE: &'static str = "#microsoft.graph.deviceCompliancePolicyAssignment";
    fn check(body: &Value) -> Result<(), ApiError> {
        compliance::check_policy(body)
    }
}

struct EspProfile;
impl Kind for EspProfile {
    const PATH: &'static str = esp::PATH;
    const ODATA_TYPE: &'static str =
        "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration";
    const NOUN: &'static str = "device enrollment configuration";
    const STORE: ScriptKind = ScriptKind::EspProfile;
    const CONTENTS: &'static [&'static str] = &[];
    const ASSIGNMENT_TYPE: &'static str = "#microsoft.graph.enrollmentConfigurationAssignment";
    fn check(body: &Value) -> Result<(), ApiError> {
        esp::check(body)
    }
}

fn crud<K: Kind>() -> Router<Shared> {
    Router::new()
        .route(K::PATH, get(list::<K>).post(create::<K>))
        .route(
            &format!("{}/{{id}}", K::PATH),
            get(one::<K>).patch(update::<K>).delete(remove::<K>),
        )
        .route(
            &format!("{}/{{id}}/assignments", K::PATH),
            get(assignments::<K>),
        )
        .route(
            &format!("{}/{{id}}/assignments/{{assignment}}", K::PATH),
            get(assignment::<K>),
        )
}

/// A script's assignments in Graph's shape, in the order they were given; each id is
/// the script's id and the assignment's position.
async fn assignments_json<K: Kind>(state: &Shared, id: &str) -> Result<Vec<Value>, ApiError> {
    load::<K>(state, id).await?;
    let mine = state.assigned_scripts(K::STORE).await?;
    Ok(mine
        .iter()
        .filter(|(script, _)| script.id == id)
        .enumerate()
        .map(|(n, (_, a))| {
            let mut out = json!({
                "@odata.type": K::ASSIGNMENT_TYPE,
                "id": format!("{id}_{n}"),
                "target": crate::directory::targets::to_json(&a.target),
            });
            let settings: Value = serde_json::from_str(&a.settings).unwrap_or(Value::Null);
            for (name, value) in K::assignment_settings(&settings) {
                out[name] = value;
            }
            out
        })
        .collect())
}

/// `GET .../assignments`.
async fn assignments<K: Kind>(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    let mine = assignments_json::<K>(&state, &id).await?;
    let context = format!("{}('{id}')/assignments", context::<K>());
    options.page(mine, &Collection::plain(&context))
}

/// `GET .../assignments/{assignmentId}`.
async fn assignment<K: Kind>(
    State(state): State<Shared>,
    Path((id, assignment)): Path<(String, String)>,
    options: Options,
) -> Result<Response, ApiError> {
    let mine = assignments_json::<K>(&state, &id).await?;
    let one = crate::apps::admin::one_assignment(mine, &assignment)?;
    let context = format!("{}('{id}')/assignments", context::<K>());
    Ok(Json(options.entity(one, &context)).into_response())
}

/// The kind's collection as an `@odata.context` names it.
fn context<K: Kind>() -> &'static str {
    K::PATH.trim_start_matches("/beta/")
}

fn script_json<K: Kind>(row: &AppRow) -> Value {
    let mut body: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    body["@odata.type"] = json!(K::ODATA_TYPE);
    body["id"] = json!(row.id);
    body["createdDateTime"] = json!(row.created_at);
    body[crate::odata::DETAILS] = json!({ "revision": row.revision });
    crate::odata::with_entity_defaults(body, K::ODATA_TYPE, Some(&row.created_at))
}

fn not_found<K: Kind>(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {} {id}", K::NOUN))
}

/// Checks a script body as Graph would take it; the contents must be base64.
fn validate<K: Kind>(script: &Value) -> Result<(), ApiError> {
    if script["displayName"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "displayName is required",
        ));
    }
    for (i, field) in K::CONTENTS.iter().enumerate() {
        let content = match &script[*field] {
            Value::Null if i > 0 => continue,
            Value::String(text) if !text.is_empty() || i > 0 => text.as_str(),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{field} is required (base64)"),
                ))
            }
        };
        decode(content).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{field} is not base64: {e}"),
            )
        })?;
    }
    K::check(script)
}

/// A base64 script content as text.
fn decode(content: &str) -> Result<String, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A script's content field as text (empty when missing or not base64).
pub(crate) fn content(body: &Value, field: &str) -> String {
    decode(body[field].as_str().unwrap_or_default()).unwrap_or_default()
}

/// Loads a script or answers 404.
async fn load<K: Kind>(state: &Shared, id: &str) -> Result<AppRow, ApiError> {
    state
        .store
        .script(K::STORE, id)
        .await?
        .ok_or_else(|| not_found::<K>(id))
}

async fn list<K: Kind>(
    State(state): State<Shared>,
    options: Options,
) -> Result<Response, ApiError> {
    let scripts: Vec<Value> = state
        .store
        .scripts(K::STORE)
        .await?
        .iter()
        .map(script_json::<K>)
        .collect();
    let context = K::PATH.trim_start_matches("/beta/");
    options.page(
        scripts,
        &Collection {
            context,
            expandable: &[],
            searchable: &["displayName"],
        },
    )
}

/// A script's run states, as a collection.
fn run_states_page(
    options: &Options,
    path: &str,
    id: &str,
    states: Vec<Value>,
) -> Result<Response, ApiError> {
    let context = format!(
        "{}('{id}')/deviceRunStates",
        path.trim_start_matches("/beta/")
    );
    options.page(states, &Collection::plain(&context))
}

async fn one<K: Kind>(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Json<Value>, ApiError> {
    let entity = script_json::<K>(&load::<K>(&state, &id).await?);
    Ok(Json(
        options.entity(entity, K::PATH.trim_start_matches("/beta/")),
    ))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("not JSON: {e}")))
}

async fn create<K: Kind>(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let mut script = parse_json(&body)?;
    validate::<K>(&script)?;
    if let Some(map) = script.as_object_mut() {
        map.remove("id");
        if !K::CONTENTS.is_empty() {
            map.entry("enforceSignatureCheck")
                .or_insert(Value::Bool(K::ENFORCE_SIGNATURE_BY_DEFAULT));
        }
    }
    let id = state.random_guid().to_lowercase();
    state
        .store
        .upsert_script(K::STORE, &id, &script.to_string(), &state.now_text())
        .await?;
    state.policy_changed();
    let row = load::<K>(&state, &id).await?;
    Ok((StatusCode::CREATED, Json(script_json::<K>(&row))).into_response())
}

/// `PATCH`: changed fields replace the old ones; a new revision.
async fn update<K: Kind>(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let row = load::<K>(&state, &id).await?;
    let changes = parse_json(&body)?;
    let mut script: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    crate::odata::merge(&mut script, &changes);
    validate::<K>(&script)?;
    state
        .store
        .upsert_script(K::STORE, &id, &script.to_string(), &state.now_text())
        .await?;
    state.policy_changed();
    let entity = script_json::<K>(&load::<K>(&state, &id).await?);
    Ok(crate::odata::changed(&headers, entity))
}

/// `DELETE`: the script, its assignments and run states are gone; devices stop
/// receiving it at their next check-in.
async fn remove<K: Kind>(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    load::<K>(&state, &id).await?;
    if K::STORE == ScriptKind::ComplianceScript {
        compliance::check_unused(&state, &id).await?;
    }
    state.store.delete_script(K::STORE, &id).await?;
    state.policy_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Script targets in the shape [`crate::apps::targeted_devices`] reads.
fn as_assignment(target: &str) -> AssignmentRow {
    AssignmentRow::required("", target)
}

/// The ids of the scripts of `kind` assigned to a device: a report for any other is
/// ignored.
async fn assigned_ids(
    state: &Shared,
    kind: ScriptKind,
    device: &Device,
) -> Result<std::collections::HashSet<String>, StoreError> {
    Ok(assigned_to(state, kind, device)
        .await?
        .into_iter()
        .map(|(script, _)| script.id)
        .collect())
}

/// True when a platform script, a remediation or a compliance policy is assigned to the
/// device.
pub async fn any_assigned_to(state: &Shared, device: &Device) -> Result<bool, StoreError> {
    for kind in [
        ScriptKind::Platform,
        ScriptKind::Remediation,
        ScriptKind::CompliancePolicy,
    ] {
        if !assigned_to(state, kind, device).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The scripts of a kind assigned to a device, each with the settings of the first
/// assignment that includes it; none that an exclusion group takes away.
async fn assigned_to(
    state: &Shared,
    kind: ScriptKind,
    device: &Device,
) -> Result<Vec<(AppRow, Value)>, StoreError> {
    let audience = state.audience(device).await?;
    let all = state.assigned_scripts(kind).await?;
    let mut out: Vec<(AppRow, Value)> = Vec::new();
    for (script, a) in &all {
        let targets = || {
            all.iter()
                .filter(|(s, _)| s.id == script.id)
                .map(|(_, a)| a.target.as_str())
        };
        if out.iter().any(|(s, _)| s.id == script.id)
            || !audience.includes(&a.target)
            || audience.excluded_by(targets())
        {
            continue;
        }
        let settings = serde_json::from_str(&a.settings).unwrap_or(json!({}));
        out.push((script.clone(), settings));
    }
    Ok(out)
}

/// `POST .../assign` for a kind whose assignments are targets only, listed under `key`
/// (`deviceManagementScriptAssignments`, `assignments`, ...): stores them.
async fn assign_targets_of<K: Kind>(
    state: &Shared,
    id: &str,
    body: &[u8],
    key: &str,
) -> Result<(), ApiError> {
    load::<K>(state, id).await?;
    let v = parse_json(body)?;
    let assignments = v[key]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            Ok(crate::storage::ScriptAssignment {
                script_id: id.to_owned(),
                target: crate::directory::targets::parse(&a["target"])?,
                settings: "{}".into(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    assign_targets(state, K::STORE, id, assignments).await
}

/// Stores a script's assignments and installs the IME on targeted devices that lack it.
async fn assign_targets(
    state: &Shared,
    kind: ScriptKind,
    id: &str,
    assignments: Vec<crate::storage::ScriptAssignment>,
) -> Result<(), ApiError> {
    let targets: Vec<&str> = assignments.iter().map(|a| a.target.as_str()).collect();
    crate::directory::targets::check_groups(state, &targets).await?;
    state
        .store
        .set_script_assignments(kind, id, &assignments)
        .await?;
    state.policy_changed();
    let rows: Vec<AssignmentRow> = assignments
        .iter()
        .map(|a| as_assignment(&a.target))
        .collect();
    for device in crate::apps::targeted_devices(state, &rows).await? {
        crate::ime::require(state, &device, crate::ime::Why::Assigned).await?;
    }
    Ok(())
}
