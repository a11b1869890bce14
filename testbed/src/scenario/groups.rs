//! Entra groups in scenarios: the `join_group` and `leave_group` steps, the `group` and
//! `exclude_group` targets of `assign`, and the `{group:NAME}` and `{entra-device:NAME}`
//! placeholders of `graph` steps. Groups are found by display name through the admin
//! API, as an admin script finds them, and made when a device first joins one.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::remote_server::error_message;
use crate::world::{AdminBody, World};

/// A `join_group` or `leave_group` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipSpec {
    /// The group's display name.
    pub group: String,
    /// Devices (by name) that join or leave with their Entra device objects.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Users (by principal name) that join or leave.
    #[serde(default)]
    pub users: Vec<String>,
}

/// The groups, by display name.
pub async fn ids(world: &World) -> Result<Vec<(String, String)>, String> {
    let (status, answer) = world.admin("GET", "/beta/groups", AdminBody::None).await;
    if status != 200 {
        return Err(format!(
            "listing groups: {status} {}",
            error_message(&answer)
        ));
    }
    Ok(answer["value"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|g| {
            Some((
                g["displayName"].as_str()?.to_owned(),
                g["id"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// A group's id by display name.
pub async fn id(world: &World, name: &str) -> Result<String, String> {
    ids(world)
        .await?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| id)
        .ok_or_else(|| format!("no group named {name:?} (a device joins it first)"))
}

/// A device's Entra object id.
fn device_object(world: &World, name: &str) -> Result<String, String> {
    world
        .device_id(name)
        .map(|id| server::directory::device_object_id(&id))
        .map_err(|e| e.to_string())
}

/// The group's id, made if it does not exist yet.
async fn id_or_make(world: &World, name: &str) -> Result<String, String> {
    if let Ok(id) = id(world, name).await {
        return Ok(id);
    }
    let nickname: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    let body = json!({ "displayName": name, "mailEnabled": false, "mailNickname": nickname, "securityEnabled": true });
    let (status, answer) = world
        .admin("POST", "/beta/groups", AdminBody::Json(body))
        .await;
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("making group {name:?}: {status} {}", error_message(&answer)))
}

/// The objects a membership step names: device objects, then users.
fn objects(world: &World, spec: &MembershipSpec) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for device in &spec.devices {
        out.push(device_object(world, device)?);
    }
    out.extend(
        spec.users
            .iter()
            .map(|u| server::directory::user_object_id(u)),
    );
    Ok(out)
}

/// `join_group`: the devices and users become members (the group is made if needed).
pub async fn join(world: &World, spec: &MembershipSpec) -> Result<(), String> {
    let group = id_or_make(world, &spec.group).await?;
    let references = spec
        .devices
        .iter()
        .map(|d| {
            device_object(world, d)
                .map(|id| format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}"))
        })
        .chain(
            spec.users
                .iter()
                .map(|u| Ok(format!("https://graph.microsoft.com/v1.0/users/{u}"))),
        );
    for reference in references {
        let body = AdminBody::Json(json!({ "@odata.id": reference? }));
        let path = format!("/beta/groups/{group}/members/$ref");
        let (status, answer) = world.admin("POST", &path, body).await;
        if status != 204 {
            return Err(format!(
                "joining {}: {status} {}",
                spec.group,
                error_message(&answer)
            ));
        }
    }
    Ok(())
}

/// `leave_group`: the devices and users stop being members.
pub async fn leave(world: &World, spec: &MembershipSpec) -> Result<(), String> {
    let group = id(world, &spec.group).await?;
    for member in objects(world, spec)? {
        let path = format!("/beta/groups/{group}/members/{member}/$ref");
        let (status, answer) = world.admin("DELETE", &path, AdminBody::None).await;
        if status != 204 {
            return Err(format!(
                "leaving {}: {status} {}",
                spec.group,
                error_message(&answer)
            ));
        }
    }
    Ok(())
}

/// A group or exclusion-group target.
pub async fn target(world: &World, name: &str, exclusion: bool) -> Result<Value, String> {
    let kind = if exclusion {
        "#microsoft.graph.exclusionGroupAssignmentTarget"
    } else {
        "#microsoft.graph.groupAssignmentTarget"
    };
    Ok(json!({ "@odata.type": kind, "groupId": id(world, name).await? }))
}

/// Replaces `{group:NAME}` with group ids and `{entra-device:NAME}` with devices'
/// Entra object ids.
pub async fn expand(world: &World, text: &str) -> Result<String, String> {
    let mut text = text.to_owned();
    if text.contains("{group:") {
        for (name, id) in ids(world).await? {
            text = text.replace(&format!("{{group:{name}}}"), &id);
        }
    }
    for name in world.device_names() {
        let placeholder = format!("{{entra-device:{name}}}");
        if text.contains(&placeholder) {
            text = text.replace(&placeholder, &device_object(world, &name)?);
        }
    }
    Ok(text)
}
