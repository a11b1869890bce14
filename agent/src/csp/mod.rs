//! The DM tree: every command the server sends is answered from here, by the CSP that
//! owns the node, with the status code a real Windows device gives.
//!
//! - `./DevInfo`, `./DevDetail`: read-only facts from the device profile.
//! - `./Vendor/MSFT/DMClient`: the poll schedule and provider nodes.
//! - `./[Device|User]/Vendor/MSFT/EnterpriseDesktopAppManagement`: MSI installs.
//! - `./Vendor/MSFT/RootCATrustedCertificates`: the device's certificate stores.
//! - `./Vendor/MSFT/RemoteWipe`: `doWipe` resets the device when the session ends.
//!   (There is no RemoteLock CSP on Windows desktops: its nodes are not found.)
//! - anything else: the generic node store (Add/Replace/Get/Delete).
//!
//! `./Device/Vendor/...` and `./Vendor/...` name the same nodes.

mod builtin;
pub mod certstore;
pub mod edam;
mod generic;

use chrono::{DateTime, Utc};
use syncml::dm::{Command, Item, StatusCode};

use crate::device::Device;
use crate::state::AgentState;

/// What a CSP operation needs.
pub struct Ctx<'a> {
    /// The device model.
    pub device: &'a mut Device,
    /// The agent's state.
    pub state: &'a mut AgentState,
    /// World time.
    pub now: DateTime<Utc>,
}

/// A node's value as Get returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// Meta Format.
    pub format: String,
    /// The data.
    pub data: String,
}

impl Value {
    /// A `chr` value.
    pub fn chr(data: impl Into<String>) -> Self {
        Value {
            format: "chr".into(),
            data: data.into(),
        }
    }

    /// An `int` value.
    pub fn int(n: impl ToString) -> Self {
        Value {
            format: "int".into(),
            data: n.to_string(),
        }
    }

    /// An interior node: its children's names joined by `/`.
    pub fn node(children: &[String]) -> Self {
        Value {
            format: "node".into(),
            data: children.join("/"),
        }
    }
}

/// One command's answer: the status, and for a Get the items of its Results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The command's CmdID.
    pub cmd_ref: String,
    /// The command's name.
    pub cmd: String,
    /// Target URIs, for TargetRef.
    pub targets: Vec<String>,
    /// The status.
    pub status: StatusCode,
    /// Results items (Get).
    pub results: Vec<Item>,
}

/// Where a URI lives.
enum Route {
    DevInfo(String),
    DevDetail(String),
    DmClient(String),
    Edam { scope: &'static str, rest: String },
    CertStore(String),
    RemoteWipe(String),
    Generic(String),
}

/// The canonical form of a LocURI: no `./`, `Device/Vendor` as `Vendor`, braces
/// decoded.
pub fn normalize(uri: &str) -> String {
    let u = uri.trim().trim_start_matches("./").trim_end_matches('/');
    let u = u
        .strip_prefix("Device/")
        .filter(|r| r.starts_with("Vendor/"))
        .unwrap_or(u);
    u.replace("%7B", "{")
        .replace("%7D", "}")
        .replace("%7b", "{")
        .replace("%7d", "}")
}

fn route(uri: &str) -> Route {
    let n = normalize(uri);
    let rest = |prefix: &str| {
        n.strip_prefix(prefix)
            .map(|r| r.trim_start_matches('/').to_owned())
    };
    if let Some(r) = rest("DevInfo") {
        return Route::DevInfo(r);
    }
    if let Some(r) = rest("DevDetail") {
        return Route::DevDetail(r);
    }
    if let Some(r) = rest("Vendor/MSFT/EnterpriseDesktopAppManagement") {
        return Route::Edam {
            scope: "Device",
            rest: r,
        };
    }
    if let Some(r) = rest("User/Vendor/MSFT/EnterpriseDesktopAppManagement") {
        return Route::Edam {
            scope: "User",
            rest: r,
        };
    }
    if let Some(r) = rest(certstore::ROOT) {
        return Route::CertStore(r);
    }
    if let Some(r) = rest("Vendor/MSFT/RemoteWipe") {
        return Route::RemoteWipe(r);
    }
    if let Some(r) = rest("Vendor/MSFT/DMClient") {
        if builtin::dmclient_owns(&r) {
            return Route::DmClient(r);
        }
    }
    Route::Generic(n)
}

fn get(ctx: &mut Ctx, uri: &str) -> Result<Value, StatusCode> {
    match route(uri) {
        Route::DevInfo(r) => builtin::devinfo(ctx, &r),
        Route::DevDetail(r) => builtin::devdetail(ctx, &r),
        Route::DmClient(r) => builtin::dmclient_get(ctx, &r),
        Route::Edam { scope, rest } => edam::get(ctx, scope, &rest),
        Route::CertStore(r) => certstore::get(ctx, &r),
        Route::RemoteWipe(r) if r.is_empty() => Ok(Value::node(&[
            "doWipe".into(),
            "doWipePersistProvisionedData".into(),
        ])),
        Route::RemoteWipe(_) => Err(StatusCode::CommandNotAllowed),
        Route::Generic(n) => generic::get(ctx.state, &n),
    }
}

fn add(ctx: &mut Ctx, uri: &str, item: &Item, meta: Option<&syncml::dm::Meta>) -> StatusCode {
    match route(uri) {
        Route::DevInfo(_) | Route::DevDetail(_) | Route::DmClient(_) | Route::RemoteWipe(_) => {
            StatusCode::CommandNotAllowed
        }
        Route::Edam { scope, rest } => edam::add(ctx, scope, &rest, uri),
        Route::CertStore(r) => certstore::put(ctx, &r, item, false),
        Route::Generic(n) => generic::add(ctx.state, &n, item, meta),
    }
}

fn replace(ctx: &mut Ctx, uri: &str, item: &Item, meta: Option<&syncml::dm::Meta>) -> StatusCode {
    match route(uri) {
        Route::DevInfo(_) | Route::DevDetail(_) | Route::Edam { .. } | Route::RemoteWipe(_) => {
            StatusCode::CommandNotAllowed
        }
        Route::DmClient(r) => builtin::dmclient_replace(ctx, &r, item),
        Route::CertStore(r) => certstore::put(ctx, &r, item, true),
        Route::Generic(n) => generic::replace(ctx.state, &n, item, meta),
    }
}

fn delete(ctx: &mut Ctx, uri: &str) -> StatusCode {
    match route(uri) {
        Route::DevInfo(_) | Route::DevDetail(_) | Route::DmClient(_) | Route::RemoteWipe(_) => {
            StatusCode::CommandNotAllowed
        }
        Route::Edam { scope, rest } => edam::delete(ctx, scope, &rest),
        Route::CertStore(r) => certstore::delete(ctx, &r),
        Route::Generic(n) => generic::delete(ctx.state, &n),
    }
}

fn exec(ctx: &mut Ctx, uri: &str, item: &Item) -> StatusCode {
    match route(uri) {
        Route::Edam { scope, rest } => edam::exec(ctx, scope, &rest, uri, item),
        // doWipePersistProvisionedData keeps provisioning packages, which the simulated
        // device has none of: both reset it.
        Route::RemoteWipe(r) if r == "doWipe" || r == "doWipePersistProvisionedData" => {
            ctx.state.leaving = Some(crate::state::Leaving::Wipe);
            StatusCode::Ok
        }
        Route::Generic(n) if generic::get(ctx.state, &n).is_err() => StatusCode::NotFound,
        _ => StatusCode::CommandNotAllowed,
    }
}

fn target(item: &Item) -> String {
    item.target
        .as_ref()
        .map(|l| l.loc_uri.clone())
        .unwrap_or_default()
}

/// Executes one server command and returns the answers it produces (one for a plain
/// command; the container's and each nested command's for Atomic and Sequence).
pub fn execute(ctx: &mut Ctx, command: &Command) -> Vec<Answer> {
    match command {
        Command::Atomic(c) => atomic(ctx, command, &c.commands),
        Command::Sequence(c) => {
            let mut answers = vec![answer(command, StatusCode::Ok, vec![])];
            for inner in &c.commands {
                answers.extend(execute(ctx, inner));
            }
            answers
        }
        Command::Get(c) => {
            let mut status = StatusCode::Ok;
            let mut results = Vec::new();
            for item in &c.items {
                let uri = target(item);
                match get(ctx, &uri) {
                    Ok(v) => {
                        let mut out = Item::source_value(uri, v.data);
                        out.meta = Some(syncml::dm::Meta {
                            format: Some(v.format),
                            type_: Some("text/plain".into()),
                            ..Default::default()
                        });
                        results.push(out);
                    }
                    Err(code) => status = code,
                }
            }
            vec![answer(command, status, results)]
        }
        Command::Add(c) | Command::Replace(c) | Command::Delete(c) | Command::Exec(c) => {
            let mut status = StatusCode::Ok;
            for item in &c.items {
                let uri = target(item);
                let code = match command {
                    Command::Add(_) => add(ctx, &uri, item, c.meta.as_ref()),
                    Command::Replace(_) => replace(ctx, &uri, item, c.meta.as_ref()),
                    Command::Delete(_) => delete(ctx, &uri),
                    _ => exec(ctx, &uri, item),
                };
                if status.is_success() && code != StatusCode::Ok {
                    status = code;
                }
            }
            vec![answer(command, status, vec![])]
        }
        Command::Copy(_) => vec![answer(
            command,
            StatusCode::OptionalFeatureNotSupported,
            vec![],
        )],
        Command::Alert(_) => vec![answer(command, StatusCode::Ok, vec![])],
        Command::Status(_) | Command::Results(_) => vec![],
    }
}

fn answer(command: &Command, status: StatusCode, results: Vec<Item>) -> Answer {
    Answer {
        cmd_ref: command.cmd_id().to_owned(),
        cmd: command.name().to_owned(),
        targets: command
            .items()
            .iter()
            .filter_map(|i| i.target.as_ref())
            .map(|l| l.loc_uri.clone())
            .collect(),
        status,
        results,
    }
}

/// All or nothing: on the first failure the DM tree is restored, commands that had
/// succeeded report 216 (rolled back), later ones 215 (not executed), the failing one
/// its own code, and the Atomic 507.
fn atomic(ctx: &mut Ctx, command: &Command, inner: &[Command]) -> Vec<Answer> {
    let snapshot = ctx.state.nodes.clone();
    let mut answers = Vec::new();
    let mut failed = false;
    for c in inner {
        if failed {
            answers.push(answer(c, StatusCode::NotExecuted, vec![]));
            continue;
        }
        let mut got = execute(ctx, c);
        if got.iter().any(|a| !a.status.is_success()) {
            failed = true;
            for a in &mut got {
                if a.status.is_success() {
                    a.status = StatusCode::AtomicRollbackOk;
                }
            }
            for a in &mut answers {
                a.status = StatusCode::AtomicRollbackOk;
                a.results.clear();
            }
        }
        answers.extend(got);
    }
    let status = if failed {
        ctx.state.nodes = snapshot;
        StatusCode::AtomicFailed
    } else {
        StatusCode::Ok
    };
    let mut out = vec![answer(command, status, vec![])];
    out.extend(answers);
    out
}
