//! The directory in Graph's shape: `/groups` (create, read, change, delete), their
//! `members` and `members/$ref` (devices and users), `/devices` (each enrolled device's
//! Entra object) and `/users` (the users Tenantless knows: devices' primary users and
//! group members).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{device_object_id, user_object_id, Kind};
use crate::api_error::ApiError;
use crate::journal::Event;
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::{Device, GroupRow, MemberRow};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/beta/groups", get(list).post(create))
        .route("/beta/groups/{id}", get(one).patch(update).delete(remove))
        .route("/beta/groups/{id}/members", get(members))
        .route(
            "/beta/groups/{id}/members/$ref",
            post(add_member).delete(remove_member_by_query),
        )
        .route(
            "/beta/groups/{id}/members/{member}/$ref",
            delete(remove_member),
        )
        .route("/beta/devices", get(devices))
        .route("/beta/devices/{id}", get(device))
        .route("/beta/devices/{id}/memberOf", get(device_member_of))
        .route("/beta/users", get(users))
        .route("/beta/users/{id}", get(user))
        .route("/beta/users/{id}/memberOf", get(user_member_of))
}

const GROUPS: Collection = Collection {
    context: "groups",
    expandable: &[],
    searchable: &["displayName"],
};
const DEVICES: Collection = Collection {
    context: "devices",
    expandable: &[],
    searchable: &["displayName"],
};
const USERS: Collection = Collection {
    context: "users",
    expandable: &[],
    searchable: &["displayName", "userPrincipalName"],
};

/// Graph's answer for a directory object that does not exist.
fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
    .with_code("Request_ResourceNotFound")
}

fn bad(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, why).with_code("Request_BadRequest")
}

fn group_json(row: &GroupRow) -> Value {
    let mut body: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), json!(row.id));
        map.insert("createdDateTime".into(), json!(row.created_at));
        map.insert("renewedDateTime".into(), json!(row.modified_at));
    }
    body
}

/// An enrolled device's Entra object (`#microsoft.graph.device`).
fn device_json(d: &Device) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.device",
        "id": device_object_id(&d.id),
        "deviceId": d.id,
        "displayName": d.device_name,
        "operatingSystem": "Windows",
        "operatingSystemVersion": d.os_version,
        "accountEnabled": true,
        "isManaged": true,
        "trustType": "AzureAd",
        "registrationDateTime": d.enrolled_at,
    })
}

/// A user (`#microsoft.graph.user`) from their principal name.
fn user_json(upn: &str) -> Value {
    let name = upn.split('@').next().unwrap_or(upn);
    json!({
        "@odata.type": "#microsoft.graph.user",
        "id": user_object_id(upn),
        "displayName": name,
        "userPrincipalName": upn,
        "mail": upn,
        "accountEnabled": true,
    })
}

async fn load(state: &Shared, id: &str) -> Result<GroupRow, ApiError> {
    state.store.group(id).await?.ok_or_else(|| not_found(id))
}

async fn list(State(state): State<Shared>, options: Options) -> Result<Response, ApiError> {
    let groups = state.store.groups().await?.iter().map(group_json).collect();
    options.page(groups, &GROUPS)
}

async fn one(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Json<Value>, ApiError> {
    let group = group_json(&load(&state, &id).await?);
    Ok(Json(options.entity(group, GROUPS.context)))
}

/// `POST /groups`: a security group (`displayName` required; `mailEnabled`,
/// `mailNickname`, `securityEnabled` take Graph's defaults for one), with its first
/// members when `members@odata.bind` lists their references. Dynamic membership rules
/// are refused: members are added by reference.
async fn create(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let mut group: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(name) = group["displayName"].as_str().filter(|n| !n.is_empty()) else {
        return Err(bad("displayName is required"));
    };
    let nickname = name.replace(|c: char| !c.is_ascii_alphanumeric(), "");
    if group["membershipRule"]
        .as_str()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(bad(
            "dynamic membership rules are not supported: add members by reference",
        ));
    }
    let Value::Object(map) = &mut group else {
        return Err(bad("a group is a JSON object"));
    };
    map.remove("id");
    let bound = match map.remove("members@odata.bind") {
        None => Vec::new(),
        Some(Value::Array(refs)) => refs,
        Some(_) => return Err(bad("members@odata.bind is a list of references")),
    };
    let mut members = Vec::new();
    for reference in &bound {
        let Some(reference) = reference.as_str() else {
            return Err(bad("members@odata.bind is a list of references"));
        };
        members.push(resolve(&state, reference).await?);
    }
    map.insert("@odata.type".into(), json!("#microsoft.graph.group"));
    map.entry("description").or_insert(Value::Null);
    map.entry("groupTypes").or_insert(json!([]));
    map.entry("mailEnabled").or_insert(json!(false));
    map.entry("mailNickname").or_insert(json!(nickname));
    map.entry("securityEnabled").or_insert(json!(true));
    let id = state.random_guid().to_lowercase();
    state
        .store
        .upsert_group(&id, &group.to_string(), &state.now_text())
        .await?;
    for (kind, member_id, name) in members {
        let row = MemberRow {
            group_id: id.clone(),
            member_id,
            kind: kind.as_str().into(),
            name,
        };
        if state.store.add_member(&row).await? {
            changed(&state, &row, "added").await?;
        }
    }
    let row = load(&state, &id).await?;
    Ok((StatusCode::CREATED, Json(group_json(&row))).into_response())
}

async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let row = load(&state, &id).await?;
    let changes: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut group: Value = serde_json::from_str(&row.body).unwrap_or(json!({}));
    crate::odata::merge(&mut group, &changes);
    state
        .store
        .upsert_group(&id, &group.to_string(), &state.now_text())
        .await?;
    Ok(crate::odata::changed(
        &headers,
        group_json(&load(&state, &id).await?),
    ))
}

/// `DELETE /groups/{id}`: its members leave it; assignments to it reach no one.
async fn remove(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_group(&id).await? {
        return Err(not_found(&id));
    }
    state.policy_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// The group's direct members, as directory objects.
async fn members(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    load(&state, &id).await?;
    let devices = state.store.devices().await?;
    let members = state
        .store
        .memberships()
        .await?
        .into_iter()
        .filter(|m| m.group_id == id)
        .filter_map(|m| {
            if m.kind == Kind::Device.as_str() {
                devices.iter().find(|d| d.id == m.name).map(device_json)
            } else {
                Some(user_json(&m.name))
            }
        })
        .collect();
    options.page(members, &Collection::plain("directoryObjects"))
}

/// The directory object an `@odata.id` names: `.../directoryObjects/{id}`,
/// `.../devices/{id}` or `.../users/{id or userPrincipalName}`.
async fn resolve(state: &Shared, reference: &str) -> Result<(Kind, String, String), ApiError> {
    let id = referenced_id(reference);
    if id.is_empty() {
        return Err(bad("@odata.id must name a directory object"));
    }
    let devices = state.store.devices().await?;
    if let Some(d) = devices
        .iter()
        .find(|d| device_object_id(&d.id).eq_ignore_ascii_case(id))
    {
        return Ok((Kind::Device, device_object_id(&d.id), d.id.clone()));
    }
    if id.contains('@') {
        return Ok((Kind::User, user_object_id(id), id.to_owned()));
    }
    match known_users(state, &devices)
        .await?
        .into_iter()
        .find(|upn| user_object_id(upn).eq_ignore_ascii_case(id))
    {
        Some(upn) => Ok((Kind::User, user_object_id(&upn), upn)),
        None => Err(not_found(id)),
    }
}

/// The id at the end of a reference (`.../directoryObjects/{id}`, `.../users('{id}')`).
fn referenced_id(reference: &str) -> &str {
    reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim_matches(|c| c == '\'' || c == '(' || c == ')')
}

/// `POST /groups/{id}/members/$ref` `{"@odata.id": ".../directoryObjects/{id}"}`: the
/// device or user joins the group (204); what the group's assignments reach, the IME
/// included, goes out at the device's next check-in.
async fn add_member(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    load(&state, &id).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(reference) = v["@odata.id"].as_str() else {
        return Err(bad(
            "the body must be {\"@odata.id\": \".../directoryObjects/{id}\"}",
        ));
    };
    let (kind, member_id, name) = resolve(&state, reference).await?;
    let row = MemberRow {
        group_id: id.clone(),
        member_id,
        kind: kind.as_str().into(),
        name,
    };
    if !state.store.add_member(&row).await? {
        return Err(bad(
            "One or more added object references already exist for the following modified properties: 'members'.",
        ));
    }
    changed(&state, &row, "added").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /groups/{id}/members/{memberId}/$ref`: the member leaves the group (204).
async fn remove_member(
    State(state): State<Shared>,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    load(&state, &id).await?;
    let all = state.store.memberships().await?;
    let Some(row) = all
        .into_iter()
        .find(|m| m.group_id == id && m.member_id.eq_ignore_ascii_case(&member))
    else {
        return Err(not_found(&member));
    };
    state.store.remove_member(&id, &row.member_id).await?;
    changed(&state, &row, "removed").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /groups/{id}/members/$ref?$id=https://graph.microsoft.com/v1.0/directoryObjects/{memberId}`,
/// the form newer SDKs send: as [`remove_member`].
async fn remove_member_by_query(
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let reference = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "$id" || k == "@id")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| {
            bad("name the member: ?$id=https://graph.microsoft.com/v1.0/directoryObjects/{id}")
        })?;
    let member = referenced_id(&reference).to_owned();
    remove_member(State(state), Path((id, member))).await
}

/// After a membership change: the policy is recomputed, the change journalled (under
/// the device, for a device member), and each device the member stands for gets the
/// IME if something it needs reaches it now.
async fn changed(state: &Shared, row: &MemberRow, change: &str) -> Result<(), ApiError> {
    state.policy_changed();
    let is_device = row.kind == Kind::Device.as_str();
    let devices: Vec<Device> = state
        .store
        .devices()
        .await?
        .into_iter()
        .filter(|d| {
            if is_device {
                d.id == row.name
            } else {
                d.user_principal_name.eq_ignore_ascii_case(&row.name)
            }
        })
        .collect();
    let event = Event::MembershipChanged {
        group: row.group_id.clone(),
        member: row.member_id.clone(),
        member_kind: row.kind.clone(),
        change: change.into(),
    };
    let journal_under = if is_device { row.name.as_str() } else { "" };
    state.journal.record(journal_under, &event).await?;
    for device in &devices {
        if crate::ime::needed_by(state, device).await? {
            crate::ime::require(state, &device.id, crate::ime::Why::Membership).await?;
        }
    }
    Ok(())
}

async fn devices(State(state): State<Shared>, options: Options) -> Result<Response, ApiError> {
    let devices = state
        .store
        .devices()
        .await?
        .iter()
        .map(device_json)
        .collect();
    options.page(devices, &DEVICES)
}

async fn device(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Json<Value>, ApiError> {
    let devices = state.store.devices().await?;
    let d = devices
        .iter()
        .find(|d| device_object_id(&d.id).eq_ignore_ascii_case(&id))
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(options.entity(device_json(d), DEVICES.context)))
}

/// The users Tenantless knows: devices' primary users and users added to groups.
async fn known_users(state: &Shared, devices: &[Device]) -> Result<Vec<String>, ApiError> {
    let mut upns: Vec<String> = devices
        .iter()
        .map(|d| d.user_principal_name.clone())
        .filter(|u| !u.is_empty())
        .chain(
            state
                .store
                .memberships()
                .await?
                .into_iter()
                .filter(|m| m.kind == Kind::User.as_str())
                .map(|m| m.name),
        )
        .collect();
    upns.sort_by_key(|u| u.to_ascii_lowercase());
    upns.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    Ok(upns)
}

async fn users(State(state): State<Shared>, options: Options) -> Result<Response, ApiError> {
    let devices = state.store.devices().await?;
    let users = known_users(&state, &devices)
        .await?
        .iter()
        .map(|u| user_json(u))
        .collect();
    options.page(users, &USERS)
}

/// `GET /users/{id or userPrincipalName}`.
async fn user(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Json<Value>, ApiError> {
    let devices = state.store.devices().await?;
    let upn = known_users(&state, &devices)
        .await?
        .into_iter()
        .find(|u| u.eq_ignore_ascii_case(&id) || user_object_id(u).eq_ignore_ascii_case(&id))
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(options.entity(user_json(&upn), USERS.context)))
}

/// The groups an object is a direct member of (`memberOf`).
async fn member_of(
    state: &Shared,
    object_id: &str,
    options: &Options,
) -> Result<Response, ApiError> {
    let memberships = state.store.memberships().await?;
    let groups = state
        .store
        .groups()
        .await?
        .iter()
        .filter(|g| {
            memberships
                .iter()
                .any(|m| m.group_id == g.id && m.member_id.eq_ignore_ascii_case(object_id))
        })
        .map(group_json)
        .collect();
    options.page(groups, &Collection::plain("directoryObjects"))
}

/// `GET /devices/{id}/memberOf`.
async fn device_member_of(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    let (kind, object_id, _) = resolve(&state, &id).await?;
    if kind != Kind::Device {
        return Err(not_found(&id));
    }
    member_of(&state, &object_id, &options).await
}

/// `GET /users/{id or userPrincipalName}/memberOf`.
async fn user_member_of(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    let (kind, object_id, _) = resolve(&state, &id).await?;
    if kind != Kind::User {
        return Err(not_found(&id));
    }
    member_of(&state, &object_id, &options).await
}
