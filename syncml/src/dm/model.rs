//! The typed SyncML DM 1.2 message: what a device and a server say to each other.

/// One SyncML message: a header and a body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncMl {
    /// Who is talking, in which session, with which credentials.
    pub hdr: SyncHdr,
    /// The commands, and whether this is the last message of the package.
    pub body: SyncBody,
}

/// `SyncHdr`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncHdr {
    /// `VerDTD`, `1.2`.
    pub ver_dtd: String,
    /// `VerProto`, `DM/1.2`.
    pub ver_proto: String,
    /// `SessionID`: an opaque string (decimal, hex and `0` are all seen).
    pub session_id: String,
    /// `MsgID`, counting from 1 within a session on each side.
    pub msg_id: String,
    /// `Target`: the receiver.
    pub target: Option<Location>,
    /// `Source`: the sender.
    pub source: Option<Location>,
    /// `Cred`: OMA-DM digest credentials.
    pub cred: Option<Cred>,
    /// `Meta`, e.g. `MaxMsgSize`.
    pub meta: Option<Meta>,
}

/// A `Target` or `Source`: a `LocURI` and an optional `LocName`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// `LocURI`, e.g. `./DevInfo/DevId` (never starting with `/`).
    pub loc_uri: String,
    /// `LocName`.
    pub loc_name: Option<String>,
}

impl Location {
    /// A location with only a URI.
    pub fn uri(uri: impl Into<String>) -> Self {
        Location {
            loc_uri: uri.into(),
            loc_name: None,
        }
    }
}

/// `Cred`: credentials in the header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cred {
    /// `Meta` (Format `b64`, Type `syncml:auth-md5`).
    pub meta: Option<Meta>,
    /// `Data`: the digest.
    pub data: String,
}

/// `Meta` with its children in the `syncml:metinf` namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// `Format`: chr, int, bool, b64, xml, node.
    pub format: Option<String>,
    /// `Type`, e.g. `text/plain` or `com.microsoft/MDM/LoginStatus`.
    pub type_: Option<String>,
    /// `Mark`, e.g. `informational`, `critical`.
    pub mark: Option<String>,
    /// `Size`.
    pub size: Option<String>,
    /// `NextNonce` (base64) in an authentication challenge.
    pub next_nonce: Option<String>,
    /// `MaxMsgSize`.
    pub max_msg_size: Option<String>,
    /// `MaxObjSize`.
    pub max_obj_size: Option<String>,
}

impl Meta {
    /// True when no child is set.
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// `SyncBody`: commands in order and the `Final` flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncBody {
    /// The commands.
    pub commands: Vec<Command>,
    /// `Final`: the sender has nothing more in this package.
    pub final_: bool,
}

/// A command in a `SyncBody`, `Atomic` or `Sequence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `Alert`.
    Alert(Alert),
    /// `Add`.
    Add(ItemCommand),
    /// `Replace`.
    Replace(ItemCommand),
    /// `Get`.
    Get(ItemCommand),
    /// `Delete`.
    Delete(ItemCommand),
    /// `Exec`.
    Exec(ItemCommand),
    /// `Copy`.
    Copy(ItemCommand),
    /// `Atomic`: all or nothing.
    Atomic(Container),
    /// `Sequence`: in this order.
    Sequence(Container),
    /// `Status`: the answer to a command.
    Status(Status),
    /// `Results`: the data a `Get` asked for.
    Results(Results),
}

impl Command {
    /// The element name, as `Cmd` in a `Status` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Alert(_) => "Alert",
            Command::Add(_) => "Add",
            Command::Replace(_) => "Replace",
            Command::Get(_) => "Get",
            Command::Delete(_) => "Delete",
            Command::Exec(_) => "Exec",
            Command::Copy(_) => "Copy",
            Command::Atomic(_) => "Atomic",
            Command::Sequence(_) => "Sequence",
            Command::Status(_) => "Status",
            Command::Results(_) => "Results",
        }
    }

    /// `CmdID`.
    pub fn cmd_id(&self) -> &str {
        match self {
            Command::Alert(a) => &a.cmd_id,
            Command::Add(c)
            | Command::Replace(c)
            | Command::Get(c)
            | Command::Delete(c)
            | Command::Exec(c)
            | Command::Copy(c) => &c.cmd_id,
            Command::Atomic(c) | Command::Sequence(c) => &c.cmd_id,
            Command::Status(s) => &s.cmd_id,
            Command::Results(r) => &r.cmd_id,
        }
    }

    /// Sets `CmdID`.
    pub fn set_cmd_id(&mut self, id: String) {
        match self {
            Command::Alert(a) => a.cmd_id = id,
            Command::Add(c)
            | Command::Replace(c)
            | Command::Get(c)
            | Command::Delete(c)
            | Command::Exec(c)
            | Command::Copy(c) => c.cmd_id = id,
            Command::Atomic(c) | Command::Sequence(c) => c.cmd_id = id,
            Command::Status(s) => s.cmd_id = id,
            Command::Results(r) => r.cmd_id = id,
        }
    }

    /// The items the command carries (none for containers).
    pub fn items(&self) -> &[Item] {
        match self {
            Command::Alert(a) => &a.items,
            Command::Add(c)
            | Command::Replace(c)
            | Command::Get(c)
            | Command::Delete(c)
            | Command::Exec(c)
            | Command::Copy(c) => &c.items,
            Command::Atomic(_) | Command::Sequence(_) => &[],
            Command::Status(s) => &s.items,
            Command::Results(r) => &r.items,
        }
    }

    /// True when the sender asked for no `Status` (`NoResp`).
    pub fn no_resp(&self) -> bool {
        match self {
            Command::Alert(a) => a.no_resp,
            Command::Add(c)
            | Command::Replace(c)
            | Command::Get(c)
            | Command::Delete(c)
            | Command::Exec(c)
            | Command::Copy(c) => c.no_resp,
            Command::Atomic(c) | Command::Sequence(c) => c.no_resp,
            Command::Status(_) | Command::Results(_) => false,
        }
    }
}

/// `Add`, `Replace`, `Get`, `Delete`, `Exec` and `Copy`: a command on DM tree items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemCommand {
    /// `CmdID`.
    pub cmd_id: String,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Meta` for all items.
    pub meta: Option<Meta>,
    /// `Item`s.
    pub items: Vec<Item>,
}

/// `Alert`: a code in `Data` and optional items (generic alerts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Alert {
    /// `CmdID`.
    pub cmd_id: String,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Data`: the alert code, e.g. `1201`.
    pub data: String,
    /// `Item`s, e.g. the LoginStatus or a generic alert's payload.
    pub items: Vec<Item>,
}

impl Alert {
    /// The alert code, when `Data` holds one.
    pub fn code(&self) -> Option<super::AlertCode> {
        self.data
            .trim()
            .parse::<u16>()
            .ok()
            .map(super::AlertCode::from)
    }
}

/// `Atomic` and `Sequence`: commands nested in one command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    /// `CmdID`.
    pub cmd_id: String,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Meta`.
    pub meta: Option<Meta>,
    /// The nested commands.
    pub commands: Vec<Command>,
}

/// `Status`: the answer to one command (or to the `SyncHdr`, with `CmdRef` 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// `CmdID`.
    pub cmd_id: String,
    /// `MsgRef`: the message that held the command.
    pub msg_ref: String,
    /// `CmdRef`: the command's `CmdID`.
    pub cmd_ref: String,
    /// `Cmd`: the command's name, or `SyncHdr`.
    pub cmd: String,
    /// `TargetRef`s.
    pub target_refs: Vec<String>,
    /// `SourceRef`s.
    pub source_refs: Vec<String>,
    /// `Chal`: an authentication challenge.
    pub chal: Option<Chal>,
    /// `Data`: the status code, e.g. `200`.
    pub data: String,
    /// `Item`s.
    pub items: Vec<Item>,
}

impl Status {
    /// The status code, when `Data` holds one.
    pub fn code(&self) -> Option<super::StatusCode> {
        self.data
            .trim()
            .parse::<u16>()
            .ok()
            .map(super::StatusCode::from)
    }
}

/// `Chal`: the server asks for credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chal {
    /// `Meta` with Type `syncml:auth-md5`, Format `b64` and `NextNonce`.
    pub meta: Meta,
}

/// `Results`: values returned for a `Get`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Results {
    /// `CmdID`.
    pub cmd_id: String,
    /// `MsgRef`.
    pub msg_ref: Option<String>,
    /// `CmdRef`: the `Get` it answers.
    pub cmd_ref: String,
    /// `Meta`.
    pub meta: Option<Meta>,
    /// `TargetRef`.
    pub target_ref: Option<String>,
    /// `SourceRef`.
    pub source_ref: Option<String>,
    /// `Item`s with the values.
    pub items: Vec<Item>,
}

/// `Item`: a node of the DM tree and its value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    /// `Target`: the node acted on (server to device).
    pub target: Option<Location>,
    /// `Source`: the node a value comes from (device to server).
    pub source: Option<Location>,
    /// `Meta`.
    pub meta: Option<Meta>,
    /// `Data`.
    pub data: Option<Data>,
}

impl Item {
    /// An item aimed at a node, with no value.
    pub fn target(uri: impl Into<String>) -> Self {
        Item {
            target: Some(Location::uri(uri)),
            ..Item::default()
        }
    }

    /// An item from a node, with a text value.
    pub fn source_value(uri: impl Into<String>, value: impl Into<String>) -> Self {
        Item {
            source: Some(Location::uri(uri)),
            data: Some(Data::Text(value.into())),
            ..Item::default()
        }
    }

    /// The item's value as text (inline XML as its markup).
    pub fn data_text(&self) -> Option<&str> {
        self.data.as_ref().map(Data::as_str)
    }
}

/// `Data`: text, or inline XML (used with Format `xml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Character data; escaped when written.
    Text(String),
    /// A well-formed XML fragment, written and read verbatim.
    Xml(String),
}

impl Data {
    /// The text, or the XML markup.
    pub fn as_str(&self) -> &str {
        match self {
            Data::Text(s) | Data::Xml(s) => s,
        }
    }
}
