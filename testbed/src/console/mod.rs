//! The lab console: a browser view of an in-process world. Server-rendered HTML (maud)
//! with a little hand-written JavaScript and SVG, assets embedded, nothing fetched from
//! elsewhere, so it works offline and in CI.
//!
//! Views: the world (devices, the clock), a device (summary, timeline, sessions, apps),
//! apps, scripts and remediations with their device statuses and Discovered apps,
//! a management session as a SyncML viewer shows it, the registry as regedit shows it
//! (Win32Apps state messages decoded), the IME's logs as CMTrace shows them, a device's
//! Company Portal, and the journal with the scenario files' filter language and
//! verification. Actions (sync, syncapp, restart the IME, reboot, the Ripley maneuver,
//! Company Portal's Install; the clock's step, advance, play and pause) go through the
//! world like any scenario step; those on a device are journalled as `lab_action`.
//! There is no authentication: the console is for a lab's own machine (loopback).

mod actions;
mod apps_view;
mod journal_view;
mod layout;
mod logs_view;
mod portal_view;
mod registry_view;
pub mod report;
mod syncml_view;
mod timeline_svg;
mod views;

pub use views::DEVICES_PER_PAGE;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Mutex;

use crate::world::World;

/// The address the console listens on unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8090";

/// How much world time passes per real second while the clock plays (60x).
const PLAY_RATE: chrono::Duration = chrono::Duration::minutes(1);

/// The world the console shows, shared by its requests, and whether its clock plays.
#[derive(Clone)]
struct Shared {
    world: Arc<Mutex<World>>,
    playing: Arc<AtomicBool>,
}

impl Shared {
    async fn lock(&self) -> tokio::sync::MutexGuard<'_, World> {
        self.world.lock().await
    }

    fn playing(&self) -> bool {
        self.playing.load(Ordering::Relaxed)
    }
}

/// A console bound to its address, not yet serving.
pub struct Console {
    listener: tokio::net::TcpListener,
    shared: Shared,
}

impl Console {
    /// Binds `addr` (port 0 picks a free one) for `world`.
    pub async fn bind(world: World, addr: SocketAddr) -> std::io::Result<Console> {
        Ok(Console {
            listener: tokio::net::TcpListener::bind(addr).await?,
            shared: Shared {
                world: Arc::new(Mutex::new(world)),
                playing: Arc::new(AtomicBool::new(false)),
            },
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes, then hands the world back.
    pub async fn serve(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<World> {
        let app = routes().with_state(self.shared.clone());
        let player = tokio::spawn(play(self.shared.clone()));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(stop)
            .await;
        player.abort();
        let _ = player.await;
        served?;
        match Arc::try_unwrap(self.shared.world) {
            Ok(world) => Ok(world.into_inner()),
            Err(_) => Err(std::io::Error::other("the console still holds the world")),
        }
    }
}

/// While the clock plays, the world moves [`PLAY_RATE`] every real second (a lab a
/// class watches; the real clock, not the world's, paces it).
async fn play(shared: Shared) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    // A big world can take longer than a second to move a minute: no catching up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.playing() {
            shared.lock().await.advance(PLAY_RATE).await;
        }
    }
}

fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(views::world))
        .route("/clock/advance", post(actions::advance))
        .route("/clock/step", post(actions::step))
        .route("/clock/play", post(|s| actions::play_pause(s, true)))
        .route("/clock/pause", post(|s| actions::play_pause(s, false)))
        .route("/journal", get(journal_view::journal))
        .route("/apps", get(apps_view::apps))
        .route("/devices/{name}", get(views::device))
        .route(
            "/devices/{name}/sessions/{session}",
            get(syncml_view::session),
        )
        .route("/devices/{name}/registry", get(registry_view::registry))
        .route("/devices/{name}/registry.reg", get(registry_view::export))
        .route("/devices/{name}/logs", get(logs_view::logs))
        .route("/devices/{name}/actions/{action}", post(actions::device))
        .route("/devices/{name}/apps/{app}/ripley", post(actions::ripley))
        .route("/devices/{name}/users/sign-in", post(actions::sign_in))
        .route("/devices/{name}/users/sign-out", post(actions::sign_out))
        .route("/devices/{name}/company-portal", get(portal_view::portal))
        .route(
            "/devices/{name}/company-portal/{app}/install",
            post(portal_view::install),
        )
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        server::console::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        server::console::JS,
    )
        .into_response()
}

/// A page that cannot be shown, in the console's own shape.
pub(crate) fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        layout::page("Not found", &[], layout::problem(&what)),
    )
        .into_response()
}
