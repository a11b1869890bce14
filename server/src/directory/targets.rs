//! Assignment targets: Graph's target JSON and the short form Tenantless stores
//! (`allDevices`, `allUsers`, `device:<ID>`, `user:<upn>`, `group:<id>`,
//! `exclude:<id>`). Apps, platform scripts and remediations share them.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{EXCLUDE, GROUP};
use crate::api_error::ApiError;
use crate::state::Shared;

/// Reads a target as Graph sends it: `#microsoft.graph.allDevicesAssignmentTarget`,
/// `allLicensedUsersAssignmentTarget`, `groupAssignmentTarget` and
/// `exclusionGroupAssignmentTarget` (`groupId`), and Tenantless's own
/// `#tenantless.deviceAssignmentTarget` (`deviceId`) and
/// `#tenantless.userAssignmentTarget` (`userPrincipalName`). Assignment filters are
/// refused (400), never ignored.
pub fn parse(t: &Value) -> Result<String, ApiError> {
    let bad = |why: String| ApiError::new(StatusCode::BAD_REQUEST, why);
    let filter = t["deviceAndAppManagementAssignmentFilterId"]
        .as_str()
        .filter(|f| !f.is_empty() && *f != "00000000-0000-0000-0000-000000000000");
    if let Some(filter) = filter {
        return Err(bad(format!(
            "assignment filter {filter:?}: assignment filters are not supported"
        )));
    }
    let group = |kind: &str| -> Result<String, ApiError> {
        match t["groupId"]
            .as_str()
            .and_then(|g| uuid::Uuid::parse_str(g).ok())
        {
            Some(g) => Ok(format!("{kind}:{g}")),
            None => Err(bad("groupId must be a group's object id (a GUID)".into())),
        }
    };
    Ok(match t["@odata.type"].as_str().unwrap_or_default() {
        "#microsoft.graph.allDevicesAssignmentTarget" => "allDevices".to_owned(),
        "#microsoft.graph.allLicensedUsersAssignmentTarget" => "allUsers".to_owned(),
        "#microsoft.graph.groupAssignmentTarget" => group(GROUP)?,
        "#microsoft.graph.exclusionGroupAssignmentTarget" => group(EXCLUDE)?,
        "#tenantless.deviceAssignmentTarget" => format!(
            "device:{}",
            t["deviceId"].as_str().unwrap_or_default().to_uppercase()
        ),
        "#tenantless.userAssignmentTarget" => format!(
            "user:{}",
            t["userPrincipalName"].as_str().unwrap_or_default()
        ),
        other => return Err(bad(format!("target {other:?} is not supported"))),
    })
}

/// A stored target as Graph shows it.
pub fn to_json(target: &str) -> Value {
    match target.split_once(':') {
        Some(("device", id)) => {
            json!({ "@odata.type": "#tenantless.deviceAssignmentTarget", "deviceId": id })
        }
        Some(("user", upn)) => {
            json!({ "@odata.type": "#tenantless.userAssignmentTarget", "userPrincipalName": upn })
        }
        Some((GROUP, id)) => group_json("#microsoft.graph.groupAssignmentTarget", id),
        Some((EXCLUDE, id)) => group_json("#microsoft.graph.exclusionGroupAssignmentTarget", id),
        _ if target == "allUsers" => {
            json!({ "@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget" })
        }
        _ => json!({ "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget" }),
    }
}

fn group_json(odata_type: &str, id: &str) -> Value {
    json!({
        "@odata.type": odata_type,
        "deviceAndAppManagementAssignmentFilterId": null,
        "deviceAndAppManagementAssignmentFilterType": "none",
        "groupId": id,
    })
}

/// Refuses (400) targets naming a group that does not exist: an assignment to nobody
/// would be a silent no-op.
pub async fn check_groups(state: &Shared, targets: &[&str]) -> Result<(), ApiError> {
    for target in targets {
        if let Some((GROUP | EXCLUDE, id)) = target.split_once(':') {
            if state.store.group(id).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("group {id} does not exist"),
                ));
            }
        }
    }
    Ok(())
}
