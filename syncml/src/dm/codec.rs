//! Reading and writing SyncML DM messages.
//!
//! Reading is liberal: any namespace prefix, white space around tokens, unknown
//! elements skipped, `Data` as text, CDATA or inline XML. Writing is compact and in the
//! element order of the SyncML DTD, with `Meta` children in `syncml:metinf`.

use super::model::*;
use super::{METINF_NS, SYNCML_NS};
use crate::error::{Error, Result};
use crate::xml::{self, Element, XmlWriter};

impl SyncMl {
    /// Reads a message from the bytes of an HTTP body (UTF-8 or UTF-16).
    pub fn parse(bytes: &[u8]) -> Result<SyncMl> {
        let text = xml::decode(bytes)?;
        let root = xml::parse(&text)?;
        if root.name != "SyncML" {
            return Err(Error::Unexpected {
                expected: "SyncML".into(),
                found: root.name,
            });
        }
        let hdr = read_hdr(root.require("SyncHdr")?)?;
        let body = read_body(root.require("SyncBody")?, &text)?;
        Ok(SyncMl { hdr, body })
    }

    /// Writes the message as XML text.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.open("SyncML", &[("xmlns", SYNCML_NS)]);
        write_hdr(&mut w, &self.hdr);
        w.open("SyncBody", &[]);
        for command in &self.body.commands {
            write_command(&mut w, command);
        }
        if self.body.final_ {
            w.empty("Final", &[]);
        }
        w.close("SyncBody").close("SyncML");
        w.finish()
    }
}

// ---- reading ----

fn read_hdr(el: &Element) -> Result<SyncHdr> {
    Ok(SyncHdr {
        ver_dtd: el.child_text("VerDTD").unwrap_or_default(),
        ver_proto: el.child_text("VerProto").unwrap_or_default(),
        session_id: el.require_text("SessionID")?,
        msg_id: el.require_text("MsgID")?,
        target: el.child("Target").map(read_location),
        source: el.child("Source").map(read_location),
        cred: el.child("Cred").map(read_cred),
        meta: el.child("Meta").map(read_meta),
    })
}

fn read_body(el: &Element, src: &str) -> Result<SyncBody> {
    let mut body = SyncBody::default();
    for child in el.elements() {
        if child.name == "Final" {
            body.final_ = true;
        } else if let Some(command) = read_command(child, src)? {
            body.commands.push(command);
        }
    }
    Ok(body)
}

/// Reads one command; `None` for an element that is not a command.
fn read_command(el: &Element, src: &str) -> Result<Option<Command>> {
    let command = match el.name.as_str() {
        "Alert" => Command::Alert(Alert {
            cmd_id: el.require_text("CmdID")?,
            no_resp: el.child("NoResp").is_some(),
            data: el.child_text("Data").unwrap_or_default(),
            items: read_items(el, src),
        }),
        "Add" => Command::Add(read_item_command(el, src)?),
        "Replace" => Command::Replace(read_item_command(el, src)?),
        "Get" => Command::Get(read_item_command(el, src)?),
        "Delete" => Command::Delete(read_item_command(el, src)?),
        "Exec" => Command::Exec(read_item_command(el, src)?),
        "Copy" => Command::Copy(read_item_command(el, src)?),
        "Atomic" => Command::Atomic(read_container(el, src)?),
        "Sequence" => Command::Sequence(read_container(el, src)?),
        "Status" => Command::Status(Status {
            cmd_id: el.require_text("CmdID")?,
            msg_ref: el.child_text("MsgRef").unwrap_or_default(),
            cmd_ref: el.require_text("CmdRef")?,
            cmd: el.child_text("Cmd").unwrap_or_default(),
            target_refs: texts(el, "TargetRef"),
            source_refs: texts(el, "SourceRef"),
            chal: el.child("Chal").map(|c| Chal {
                meta: c.child("Meta").map(read_meta).unwrap_or_default(),
            }),
            data: el.child_text("Data").unwrap_or_default(),
            items: read_items(el, src),
        }),
        "Results" => Command::Results(Results {
            cmd_id: el.require_text("CmdID")?,
            msg_ref: el.child_text("MsgRef"),
            cmd_ref: el.child_text("CmdRef").unwrap_or_default(),
            meta: el.child("Meta").map(read_meta),
            target_ref: el.child_text("TargetRef"),
            source_ref: el.child_text("SourceRef"),
            items: read_items(el, src),
        }),
        _ => return Ok(None),
    };
    Ok(Some(command))
}

fn read_item_command(el: &Element, src: &str) -> Result<ItemCommand> {
    Ok(ItemCommand {
        cmd_id: el.require_text("CmdID")?,
        no_resp: el.child("NoResp").is_some(),
        meta: el.child("Meta").map(read_meta),
        items: read_items(el, src),
    })
}

fn read_container(el: &Element, src: &str) -> Result<Container> {
    let mut commands = Vec::new();
    for child in el.elements() {
        if let Some(command) = read_command(child, src)? {
            commands.push(command);
        }
    }
    Ok(Container {
        cmd_id: el.require_text("CmdID")?,
        no_resp: el.child("NoResp").is_some(),
        meta: el.child("Meta").map(read_meta),
        commands,
    })
}

fn read_items(el: &Element, src: &str) -> Vec<Item> {
    el.children_named("Item")
        .map(|item| Item {
            target: item.child("Target").map(read_location),
            source: item.child("Source").map(read_location),
            meta: item.child("Meta").map(read_meta),
            data: item.child("Data").map(|d| read_data(d, src)),
        })
        .collect()
}

fn read_data(el: &Element, src: &str) -> Data {
    match src.get(el.inner.clone()) {
        Some(markup) if el.has_elements() => Data::Xml(markup.to_owned()),
        _ => Data::Text(el.text()),
    }
}

fn read_location(el: &Element) -> Location {
    Location {
        loc_uri: el.child_text("LocURI").unwrap_or_default(),
        loc_name: el.child_text("LocName"),
    }
}

fn read_cred(el: &Element) -> Cred {
    Cred {
        meta: el.child("Meta").map(read_meta),
        data: el.child_text("Data").unwrap_or_default(),
    }
}

fn read_meta(el: &Element) -> Meta {
    Meta {
        format: el.child_text("Format"),
        type_: el.child_text("Type"),
        mark: el.child_text("Mark"),
        size: el.child_text("Size"),
        next_nonce: el.child_text("NextNonce"),
        max_msg_size: el.child_text("MaxMsgSize"),
        max_obj_size: el.child_text("MaxObjSize"),
    }
}

fn texts(el: &Element, name: &str) -> Vec<String> {
    el.children_named(name)
        .map(|e| e.text().trim().to_owned())
        .collect()
}

// ---- writing ----

fn write_hdr(w: &mut XmlWriter, hdr: &SyncHdr) {
    w.open("SyncHdr", &[])
        .leaf("VerDTD", &[], &hdr.ver_dtd)
        .leaf("VerProto", &[], &hdr.ver_proto)
        .leaf("SessionID", &[], &hdr.session_id)
        .leaf("MsgID", &[], &hdr.msg_id);
    write_location(w, "Target", hdr.target.as_ref());
    write_location(w, "Source", hdr.source.as_ref());
    if let Some(cred) = &hdr.cred {
        w.open("Cred", &[]);
        write_meta(w, cred.meta.as_ref());
        w.leaf("Data", &[], &cred.data).close("Cred");
    }
    write_meta(w, hdr.meta.as_ref());
    w.close("SyncHdr");
}

fn write_command(w: &mut XmlWriter, command: &Command) {
    let name = command.name();
    w.open(name, &[]).leaf("CmdID", &[], command.cmd_id());
    match command {
        Command::Alert(alert) => {
            no_resp(w, alert.no_resp);
            w.leaf("Data", &[], &alert.data);
            write_items(w, &alert.items);
        }
        Command::Add(c)
        | Command::Replace(c)
        | Command::Get(c)
        | Command::Delete(c)
        | Command::Exec(c)
        | Command::Copy(c) => {
            no_resp(w, c.no_resp);
            write_meta(w, c.meta.as_ref());
            write_items(w, &c.items);
        }
        Command::Atomic(c) | Command::Sequence(c) => {
            no_resp(w, c.no_resp);
            write_meta(w, c.meta.as_ref());
            for inner in &c.commands {
                write_command(w, inner);
            }
        }
        Command::Status(s) => {
            w.leaf("MsgRef", &[], &s.msg_ref)
                .leaf("CmdRef", &[], &s.cmd_ref)
                .leaf("Cmd", &[], &s.cmd);
            for r in &s.target_refs {
                w.leaf("TargetRef", &[], r);
            }
            for r in &s.source_refs {
                w.leaf("SourceRef", &[], r);
            }
            if let Some(chal) = &s.chal {
                w.open("Chal", &[]);
                write_meta(w, Some(&chal.meta));
                w.close("Chal");
            }
            w.leaf("Data", &[], &s.data);
            write_items(w, &s.items);
        }
        Command::Results(r) => {
            w.leaf_opt("MsgRef", r.msg_ref.as_deref())
                .leaf("CmdRef", &[], &r.cmd_ref);
            write_meta(w, r.meta.as_ref());
            w.leaf_opt("TargetRef", r.target_ref.as_deref())
                .leaf_opt("SourceRef", r.source_ref.as_deref());
            write_items(w, &r.items);
        }
    }
    w.close(name);
}

fn no_resp(w: &mut XmlWriter, set: bool) {
    if set {
        w.empty("NoResp", &[]);
    }
}

fn write_items(w: &mut XmlWriter, items: &[Item]) {
    for item in items {
        w.open("Item", &[]);
        write_location(w, "Target", item.target.as_ref());
        write_location(w, "Source", item.source.as_ref());
        write_meta(w, item.meta.as_ref());
        match &item.data {
            Some(Data::Text(text)) => {
                w.leaf("Data", &[], text);
            }
            Some(Data::Xml(markup)) => {
                w.open("Data", &[]).raw(markup).close("Data");
            }
            None => {}
        }
        w.close("Item");
    }
}

fn write_location(w: &mut XmlWriter, name: &str, location: Option<&Location>) {
    if let Some(location) = location {
        w.open(name, &[])
            .leaf("LocURI", &[], &location.loc_uri)
            .leaf_opt("LocName", location.loc_name.as_deref())
            .close(name);
    }
}

fn write_meta(w: &mut XmlWriter, meta: Option<&Meta>) {
    let Some(meta) = meta else { return };
    w.open("Meta", &[]);
    let fields = [
        ("Format", &meta.format),
        ("Type", &meta.type_),
        ("Mark", &meta.mark),
        ("Size", &meta.size),
        ("NextNonce", &meta.next_nonce),
        ("MaxMsgSize", &meta.max_msg_size),
        ("MaxObjSize", &meta.max_obj_size),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            w.leaf(name, &[("xmlns", METINF_NS)], value);
        }
    }
    w.close("Meta");
}

impl Command {
    /// Reads one command element on its own, e.g. `<Get><CmdID>1</CmdID>...</Get>`, as
    /// an admin or a queue stores it.
    pub fn parse(xml: &str) -> Result<Command> {
        let root = xml::parse(xml)?;
        read_command(&root, xml)?.ok_or_else(|| Error::Unexpected {
            expected: "a SyncML command".into(),
            found: root.name.clone(),
        })
    }

    /// Writes the command element on its own.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        write_command(&mut w, self);
        w.finish()
    }
}
