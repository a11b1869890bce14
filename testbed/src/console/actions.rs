//! What a person does in the console: the clock (advance, step, play, pause) and, on a
//! device, sync, syncapp, restart the IME, reboot, signing a user in or out and the
//! Ripley maneuver. Each goes
//! through the [`World`] like a scenario step; what it sets off runs before the page
//! shows, and a device's action is journalled (`lab_action`).

use std::sync::atomic::Ordering;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{layout, Shared};
use crate::world::{World, WorldError};

/// The advance form: `by`.
#[derive(Deserialize)]
pub struct AdvanceForm {
    by: String,
}

/// `POST /clock/advance` (`by`: `90s`, `20m`, `8h`, `7d`).
pub async fn advance(State(world): State<Shared>, Form(form): Form<AdvanceForm>) -> Response {
    let Some(by) = crate::scenario::parse_duration(&form.by) else {
        return (
            StatusCode::BAD_REQUEST,
            layout::page(
                "Advance",
                &[],
                layout::problem(&format!(
                    "{:?} is not a duration like 90s, 20m, 8h or 7d",
                    form.by
                )),
            ),
        )
            .into_response();
    };
    world.lock().await.advance(by).await;
    Redirect::to("/").into_response()
}

/// `POST /clock/step`: to the next moment a device has something to do.
pub async fn step(State(world): State<Shared>) -> Response {
    world.lock().await.step().await;
    Redirect::to("/").into_response()
}

/// `POST /clock/play`, `/clock/pause`.
pub async fn play_pause(State(shared): State<Shared>, playing: bool) -> Response {
    shared.playing.store(playing, Ordering::Relaxed);
    Redirect::to("/").into_response()
}

/// `POST /devices/{name}/actions/{sync|syncapp|restart-ime|reboot}`: what a person does
/// to the device, then back to it.
pub async fn device(
    State(world): State<Shared>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let mut world = world.lock().await;
    let now = world.now();
    let failed = |source| WorldError::Device {
        device: name.clone(),
        source,
    };
    let (recorded, done) = match action.as_str() {
        "sync" => ("sync", world.sync(&name).await.map(|_| ())),
        "syncapp" => (
            "syncapp",
            world
                .trigger(&name, agent::ime::Trigger::SyncApp)
                .await
                .map(|_| ()),
        ),
        "reboot" => ("reboot", world.reboot(&name)),
        "restart-ime" => (
            "restartIme",
            world
                .device_mut(&name)
                .and_then(|agent| agent.restart_ime(now).map_err(failed)),
        ),
        other => return super::not_found(format!("no action {other:?}")),
    };
    let done = match done {
        Ok(()) => world.record_lab_action(&name, recorded, "").await,
        Err(e) => Err(e),
    };
    after_action(&mut world, &name, done).await
}

/// The sign-in and sign-out forms: `user` (a user principal name).
#[derive(Deserialize)]
pub struct UserForm {
    user: String,
}

/// `POST /devices/{name}/users/sign-in`: a user signs in on the device; their logon
/// check-in runs before the device shows again.
pub async fn sign_in(
    State(world): State<Shared>,
    Path(name): Path<String>,
    Form(form): Form<UserForm>,
) -> Response {
    let upn = form.user.trim();
    if !syncml::entra::is_user_principal_name(upn) {
        return (
            StatusCode::BAD_REQUEST,
            layout::page(
                "Sign in",
                &[],
                layout::problem(&format!(
                    "{upn:?} is not a user principal name like bob@contoso.com"
                )),
            ),
        )
            .into_response();
    }
    let mut world = world.lock().await;
    let done = match world.sign_in(&name, upn).await {
        Ok(_) => world.record_lab_action(&name, "signIn", upn).await,
        Err(e) => Err(e),
    };
    after_action(&mut world, &name, done).await
}

/// `POST /devices/{name}/users/sign-out`: a signed-in user signs out.
pub async fn sign_out(
    State(world): State<Shared>,
    Path(name): Path<String>,
    Form(form): Form<UserForm>,
) -> Response {
    let mut world = world.lock().await;
    let done = match world.sign_out(&name, &form.user) {
        Ok(true) => world.record_lab_action(&name, "signOut", &form.user).await,
        Ok(false) => return super::not_found(format!("{} is not signed in", form.user)),
        Err(e) => Err(e),
    };
    after_action(&mut world, &name, done).await
}

/// `POST /devices/{name}/apps/{app}/ripley`: the Ripley maneuver. The app's keys and
/// its GRS key go, then the device syncs: the IME tries the app again at once.
pub async fn ripley(
    State(world): State<Shared>,
    Path((name, app)): Path<(String, String)>,
) -> Response {
    let mut world = world.lock().await;
    let forgotten = world.device_mut(&name).and_then(|agent| {
        agent::ime::win32::forget_app(agent.device_mut(), agent::ime::win32::DEVICE_USER, &app);
        agent.save().map_err(|source| WorldError::Device {
            device: name.clone(),
            source,
        })
    });
    let done = match forgotten {
        Ok(()) => match world.record_lab_action(&name, "ripley", &app).await {
            Ok(()) => world.sync(&name).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    after_action(&mut world, &name, done).await
}

/// Back to the device once what the action set off has run, or the failure.
pub(super) async fn after_action(
    world: &mut World,
    name: &str,
    done: Result<(), WorldError>,
) -> Response {
    match done {
        // What the action set off (a check-in, a restart) runs before the page shows.
        Ok(()) => {
            world.settle().await;
            Redirect::to(&layout::device_link(name)).into_response()
        }
        Err(e) => (
            StatusCode::CONFLICT,
            layout::page("Action", &[], layout::problem(&e.to_string())),
        )
            .into_response(),
    }
}
