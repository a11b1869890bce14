//! Building a server's reply: the `SyncHdr` status, statuses for the client's commands,
//! the commands the server sends, and `Final`.

use super::model::*;
use super::StatusCode;

/// Assembles one server message of a session. `CmdID`s are assigned in order from 1,
/// nested commands included, so callers never number commands themselves.
#[derive(Debug, Clone)]
pub struct ReplyBuilder {
    hdr: SyncHdr,
    commands: Vec<Command>,
    next_id: u32,
}

impl ReplyBuilder {
    /// A reply in the request's session, with `Target` and `Source` mirrored (the reply
    /// goes to the device that sent `request`), numbered `msg_id`.
    pub fn new(request: &SyncHdr, msg_id: impl Into<String>) -> Self {
        let bare = |l: &Option<Location>| l.as_ref().map(|l| Location::uri(l.loc_uri.clone()));
        ReplyBuilder {
            hdr: SyncHdr {
                ver_dtd: "1.2".into(),
                ver_proto: "DM/1.2".into(),
                session_id: request.session_id.clone(),
                msg_id: msg_id.into(),
                target: bare(&request.source),
                source: bare(&request.target),
                cred: None,
                meta: None,
            },
            commands: Vec::new(),
            next_id: 1,
        }
    }

    /// The status of the request's header (`CmdRef` 0, `Cmd` SyncHdr), with an optional
    /// authentication challenge.
    pub fn header_status(
        &mut self,
        request: &SyncHdr,
        code: StatusCode,
        chal: Option<Chal>,
    ) -> &mut Self {
        let uri = |l: &Option<Location>| l.iter().map(|l| l.loc_uri.clone()).collect();
        let status = Status {
            msg_ref: request.msg_id.clone(),
            cmd_ref: "0".into(),
            cmd: "SyncHdr".into(),
            target_refs: uri(&request.target),
            source_refs: uri(&request.source),
            chal,
            data: code.to_string(),
            ..Status::default()
        };
        self.command(Command::Status(status))
    }

    /// The status of one command of message `msg_ref`.
    pub fn status(&mut self, msg_ref: &str, command: &Command, code: StatusCode) -> &mut Self {
        let items = command.items();
        let status = Status {
            msg_ref: msg_ref.to_owned(),
            cmd_ref: command.cmd_id().to_owned(),
            cmd: command.name().to_owned(),
            target_refs: items
                .iter()
                .filter_map(|i| i.target.as_ref())
                .map(|l| l.loc_uri.clone())
                .collect(),
            source_refs: items
                .iter()
                .filter_map(|i| i.source.as_ref())
                .map(|l| l.loc_uri.clone())
                .collect(),
            data: code.to_string(),
            ..Status::default()
        };
        self.command(Command::Status(status))
    }

    /// A status for every command of `request` that wants one (not `Status`, not
    /// `Results`, not `NoResp`), with the code `code_for` picks.
    pub fn acknowledge(
        &mut self,
        request: &SyncMl,
        code_for: impl Fn(&Command) -> StatusCode,
    ) -> &mut Self {
        for command in &request.body.commands {
            if matches!(command, Command::Status(_) | Command::Results(_)) || command.no_resp() {
                continue;
            }
            self.status(&request.hdr.msg_id, command, code_for(command));
        }
        self
    }

    /// Appends a command, giving it (and anything nested in it) the next `CmdID`s.
    pub fn command(&mut self, mut command: Command) -> &mut Self {
        self.number(&mut command);
        self.commands.push(command);
        self
    }

    /// Appends a command like [`command`](Self::command) and returns it as numbered, so
    /// the caller can note which `CmdID`s it was given.
    pub fn push(&mut self, mut command: Command) -> &Command {
        self.number(&mut command);
        self.commands.push(command);
        &self.commands[self.commands.len() - 1]
    }

    /// The `CmdID` the next command will get.
    pub fn next_cmd_id(&self) -> String {
        self.next_id.to_string()
    }

    /// True when the reply carries only statuses: sent with `Final`, it ends the session.
    pub fn only_statuses(&self) -> bool {
        self.commands
            .iter()
            .all(|c| matches!(c, Command::Status(_)))
    }

    /// The finished message, with `Final`.
    pub fn build(self) -> SyncMl {
        SyncMl {
            hdr: self.hdr,
            body: SyncBody {
                commands: self.commands,
                final_: true,
            },
        }
    }

    fn number(&mut self, command: &mut Command) {
        command.set_cmd_id(self.next_id.to_string());
        self.next_id += 1;
        if let Command::Atomic(c) | Command::Sequence(c) = command {
            for inner in &mut c.commands {
                self.number(inner);
            }
        }
    }
}
