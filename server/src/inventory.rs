//! Application inventory: `ApplicationInventory` uploads on the gateway (full ones
//! replace a device's inventory; deltas add to it, so a removal shows only after the
//! next full), and **Discovered apps** across devices
//! (`/beta/deviceManagement/detectedApps`, Graph's `detectedApp` shape, with each app's
//! devices) and on one device (`managedDevices/{id}/detectedApps`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api_error::ApiError;
use crate::journal::Event;
use crate::odata::{Collection, Options};
use crate::state::Shared;
use crate::storage::{Device, InventoryRow};

/// The admin routes.
pub fn admin_routes() -> Router<Shared> {
    Router::new()
        .route("/beta/deviceManagement/detectedApps", get(detected_apps))
        .route(
            "/beta/deviceManagement/detectedApps/{id}/managedDevices",
            get(detected_app_devices),
        )
        .route(
            "/beta/deviceManagement/managedDevices/{id}/detectedApps",
            get(device_detected_apps),
        )
}

/// Records an upload: `{InventoryType: "Full" | "Delta", Programs: [...]}`.
pub async fn upload(state: &Shared, device: &Device, payload: &str) -> Result<(), ApiError> {
    let body: Value = serde_json::from_str(payload).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("ApplicationInventory payload: {e}"),
        )
    })?;
    let full = body["InventoryType"] == "Full";
    let rows: Vec<InventoryRow> = body["Programs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            Some(InventoryRow {
                device_id: device.id.clone(),
                program_id: p["ProgramId"].as_str()?.to_owned(),
                name: p["Name"].as_str().unwrap_or_default().to_owned(),
                version: p["Version"].as_str().unwrap_or_default().to_owned(),
                publisher: p["Vendor"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    let before = state.store.inventory(&device.id).await?;
    let has = |list: &[InventoryRow], id: &str| list.iter().any(|r| r.program_id == id);
    let added: Vec<String> = rows
        .iter()
        .filter(|r| !has(&before, &r.program_id))
        .map(|r| r.name.clone())
        .collect();
    let removed: Vec<String> = if full {
        before
            .iter()
            .filter(|r| !has(&rows, &r.program_id))
            .map(|r| r.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    state
        .store
        .put_inventory(&device.id, &rows, full, &state.now_text())
        .await?;
    let programs = state.store.inventory(&device.id).await?.len();
    let event = Event::Inventory {
        inventory_type: if full { "Full" } else { "Delta" }.to_owned(),
        added,
        removed,
        programs,
    };
    if let Err(e) = state.journal.record(&device.id, &event).await {
        tracing::error!("journal: {e}");
    }
    Ok(())
}

fn app_id(name: &str, version: &str) -> String {
    hex::encode(&Sha256::digest(format!("{name}|{version}").as_bytes())[..16])
}

/// Discovered apps across devices, each with the devices that have it.
async fn aggregate(state: &Shared) -> Result<Vec<(Value, Vec<String>)>, ApiError> {
    let mut apps: Vec<(String, String, String, Vec<String>)> = Vec::new();
    for r in state.store.all_inventory().await? {
        match apps.iter_mut().find(|a| a.0 == r.name && a.1 == r.version) {
            Some(a) => a.3.push(r.device_id),
            None => apps.push((r.name, r.version, r.publisher, vec![r.device_id])),
        }
    }
    Ok(apps
        .into_iter()
        .map(|(name, version, publisher, devices)| {
            let app = json!({
                "id": app_id(&name, &version),
                "displayName": name,
                "version": version,
                "publisher": publisher,
                "platform": "windows",
                "deviceCount": devices.len(),
            });
            (app, devices)
        })
        .collect())
}

async fn detected_apps(
    State(state): State<Shared>,
    options: Options,
) -> Result<Response, ApiError> {
    let value = aggregate(&state)
        .await?
        .into_iter()
        .map(|(app, _)| app)
        .collect();
    options.page(
        value,
        &Collection {
            context: "deviceManagement/detectedApps",
            expandable: &[],
            searchable: &["displayName"],
        },
    )
}

/// `managedDevices/{id}/detectedApps`: the Discovered apps a device has.
async fn device_detected_apps(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    let Some(device) = state.store.device(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no managed device {id}"),
        ));
    };
    let value = aggregate(&state)
        .await?
        .into_iter()
        .filter(|(_, devices)| devices.contains(&device.id))
        .map(|(app, _)| app)
        .collect();
    let context = format!(
        "deviceManagement/managedDevices('{}')/detectedApps",
        device.id
    );
    options.page(
        value,
        &Collection {
            context: &context,
            expandable: &[],
            searchable: &["displayName"],
        },
    )
}

async fn detected_app_devices(
    State(state): State<Shared>,
    Path(id): Path<String>,
    options: Options,
) -> Result<Response, ApiError> {
    let mut devices = Vec::new();
    for r in state.store.all_inventory().await? {
        if app_id(&r.name, &r.version) == id {
            if let Some(d) = state.store.device(&r.device_id).await? {
                devices.push(json!({ "id": d.id, "deviceName": d.device_name }));
            }
        }
    }
    let context = format!("deviceManagement/detectedApps('{id}')/managedDevices");
    options.page(
        devices,
        &Collection {
            context: &context,
            expandable: &[],
            searchable: &["deviceName"],
        },
    )
}
