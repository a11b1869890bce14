//! Company Portal on a device, as its user sees it: the apps made available to them
//! with their status, and Install. Opening it asks the service for the list (a
//! GetAvailableApp call, in the journal), as Company Portal does.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{device_link, page, path_part, problem};
use super::Shared;

/// `GET /devices/{name}/company-portal`.
pub async fn portal(State(world): State<Shared>, Path(name): Path<String>) -> Response {
    let mut world = world.lock().await;
    let link = device_link(&name);
    let crumbs = [
        (name.clone(), link.clone()),
        ("Company Portal".into(), format!("{link}/company-portal")),
    ];
    let apps = match world.company_portal(&name).await {
        Ok(apps) => apps,
        Err(e) => {
            return (
                StatusCode::CONFLICT,
                page("Company Portal", &crumbs, problem(&e.to_string())),
            )
                .into_response()
        }
    };
    page(
        "Company Portal",
        &crumbs,
        html! {
            h1 { "Company Portal" }
            p.muted { "The apps made available to " (world.device(&name).map(|a| a.device().profile.user_principal_name.clone()).unwrap_or_default()) "." }
            table #portal {
                thead { tr { th { "App" } th { "Status" } th { "" } } }
                tbody {
                    @for app in &apps {
                        tr {
                            td { (app.name) }
                            td.portal-status { (app.status) }
                            td {
                                @if app.status != "Installed" {
                                    form method="post" action=(format!("{link}/company-portal/{}/install", path_part(&app.id))) {
                                        button.install type="submit" { "Install" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// `POST /devices/{name}/company-portal/{app}/install`: the user installs it.
pub async fn install(
    State(world): State<Shared>,
    Path((name, app)): Path<(String, String)>,
) -> Response {
    let mut world = world.lock().await;
    let back = format!("{}/company-portal", device_link(&name));
    match world.install_available(&name, &app).await {
        Ok(true) => {
            if let Err(e) = world
                .record_lab_action(&name, "companyPortalInstall", &app)
                .await
            {
                return (
                    StatusCode::CONFLICT,
                    page("Company Portal", &[], problem(&e.to_string())),
                )
                    .into_response();
            }
            world.settle().await;
            Redirect::to(&back).into_response()
        }
        Ok(false) => super::not_found(format!("no available app {app} on {name}")),
        Err(e) => (
            StatusCode::CONFLICT,
            page("Company Portal", &[], problem(&e.to_string())),
        )
            .into_response(),
    }
}
