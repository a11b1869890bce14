//! The SOAP 1.2 envelope and its WS-Addressing / WS-Security header.

use super::{ns, value, Fault};
use crate::error::{Error, Result};
use crate::xml::{self, Element, XmlWriter};

/// A message body that travels in a SOAP envelope.
pub trait Body: Sized {
    /// The local name of the body's element.
    const ELEMENT: &'static str;
    /// Reads the body from its element.
    fn read(el: &Element) -> Result<Self>;
    /// Writes the body's element.
    fn write(&self, w: &mut XmlWriter);
}

/// A SOAP envelope: header and a typed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<B> {
    /// Addressing and security headers.
    pub header: Header,
    /// The body.
    pub body: B,
}

/// What a response may be: the body asked for, or a SOAP fault.
pub type Reply<B> = std::result::Result<Envelope<B>, Envelope<Fault>>;

/// The SOAP header: WS-Addressing fields and WS-Security.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// `a:Action`.
    pub action: String,
    /// `a:MessageID` (`urn:uuid:...`).
    pub message_id: Option<String>,
    /// `a:RelatesTo`: the MessageID this answers.
    pub relates_to: Option<String>,
    /// `ActivityId` (diagnostics, sent by the service).
    pub activity_id: Option<String>,
    /// `a:ReplyTo/a:Address`.
    pub reply_to: Option<String>,
    /// `a:To`.
    pub to: Option<String>,
    /// `wsse:Security`.
    pub security: Option<Security>,
}

/// `wsse:Security`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// `u:Timestamp`.
    pub timestamp: Option<Timestamp>,
    /// `wsse:UsernameToken` (OnPremise authentication).
    pub username_token: Option<UsernameToken>,
    /// `wsse:BinarySecurityToken` (Federated authentication).
    pub binary_security_token: Option<BinarySecurityToken>,
}

/// `u:Timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// `u:Created`, ISO 8601.
    pub created: String,
    /// `u:Expires`, ISO 8601.
    pub expires: String,
}

/// `wsse:UsernameToken`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsernameToken {
    /// `wsse:Username`.
    pub username: String,
    /// `wsse:Password`.
    pub password: String,
}

/// `wsse:BinarySecurityToken`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BinarySecurityToken {
    /// `ValueType`, e.g. [`value::PKCS10`].
    pub value_type: String,
    /// `EncodingType`, usually [`value::BASE64_BINARY`].
    pub encoding_type: String,
    /// The token text (base64).
    pub value: String,
}

impl BinarySecurityToken {
    /// A base64 token of the given value type.
    pub fn base64(value_type: &str, bytes: &[u8]) -> Self {
        use base64::Engine;
        BinarySecurityToken {
            value_type: value_type.to_owned(),
            encoding_type: value::BASE64_BINARY.to_owned(),
            value: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The token's bytes: base64 decoded, white space ignored.
    pub fn decode(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        let compact: String = self.value.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| Error::invalid("BinarySecurityToken", &self.value, e.to_string()))
    }

    pub(crate) fn read(el: &Element) -> Self {
        BinarySecurityToken {
            value_type: el.attr("ValueType").unwrap_or_default().trim().to_owned(),
            encoding_type: el
                .attr("EncodingType")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            value: el.text().trim().to_owned(),
        }
    }

    pub(crate) fn write(&self, w: &mut XmlWriter, qualified: &str, with_ns: bool) {
        let mut attrs = vec![
            ("ValueType", self.value_type.as_str()),
            ("EncodingType", self.encoding_type.as_str()),
        ];
        if with_ns {
            attrs.push(("xmlns", ns::WSSE));
        }
        w.leaf(qualified, &attrs, &self.value);
    }
}

impl<B: Body> Envelope<B> {
    /// An envelope around `body`.
    pub fn new(header: Header, body: B) -> Self {
        Envelope { header, body }
    }

    /// Reads an envelope whose body must be `B`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let text = xml::decode(bytes)?;
        let root = xml::parse(&text)?;
        let (header, body) = open(&root)?;
        typed(header, body)
    }

    /// Reads a response that is either `B` or a SOAP fault.
    pub fn parse_reply(bytes: &[u8]) -> Result<Reply<B>> {
        let text = xml::decode(bytes)?;
        let root = xml::parse(&text)?;
        let (header, body) = open(&root)?;
        if body.name == Fault::ELEMENT {
            Ok(Err(typed(header, body)?))
        } else {
            Ok(Ok(typed(header, body)?))
        }
    }

    /// Writes the envelope as XML text.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.open(
            "s:Envelope",
            &[
                ("xmlns:s", ns::SOAP),
                ("xmlns:a", ns::ADDRESSING),
                ("xmlns:u", ns::WSU),
            ],
        );
        write_header(&mut w, &self.header);
        w.open("s:Body", &[("xmlns:xsi", ns::XSI)]);
        self.body.write(&mut w);
        w.close("s:Body").close("s:Envelope");
        w.finish()
    }
}

fn typed<T: Body>(header: Header, body: &Element) -> Result<Envelope<T>> {
    if body.name != T::ELEMENT {
        return Err(Error::Unexpected {
            expected: T::ELEMENT.into(),
            found: body.name.clone(),
        });
    }
    Ok(Envelope {
        header,
        body: T::read(body)?,
    })
}

/// Splits an envelope into its header and the body's first element.
fn open(root: &Element) -> Result<(Header, &Element)> {
    if root.name != "Envelope" {
        return Err(Error::Unexpected {
            expected: "Envelope".into(),
            found: root.name.clone(),
        });
    }
    let header = root.child("Header").map(read_header).unwrap_or_default();
    let body = root.require("Body")?;
    let first = body
        .elements()
        .next()
        .ok_or_else(|| Error::missing("Body", "a message element"))?;
    Ok((header, first))
}

fn read_header(el: &Element) -> Header {
    Header {
        action: el.child_text("Action").unwrap_or_default(),
        message_id: el.child_text("MessageID"),
        relates_to: el.child_text("RelatesTo"),
        activity_id: el.child_text("ActivityId"),
        reply_to: el.child("ReplyTo").and_then(|r| r.child_text("Address")),
        to: el.child_text("To"),
        security: el.child("Security").map(|s| Security {
            timestamp: s.child("Timestamp").map(|t| Timestamp {
                created: t.child_text("Created").unwrap_or_default(),
                expires: t.child_text("Expires").unwrap_or_default(),
            }),
            username_token: s.child("UsernameToken").map(|t| UsernameToken {
                username: t.child_text("Username").unwrap_or_default(),
                // A password is taken verbatim: spaces may be part of it.
                password: t.child("Password").map(|p| p.text()).unwrap_or_default(),
            }),
            binary_security_token: s
                .child("BinarySecurityToken")
                .map(BinarySecurityToken::read),
        }),
    }
}

fn write_header(w: &mut XmlWriter, h: &Header) {
    w.open("s:Header", &[]);
    w.leaf("a:Action", &[("s:mustUnderstand", "1")], &h.action);
    w.leaf_opt("a:MessageID", h.message_id.as_deref());
    w.leaf_opt("a:RelatesTo", h.relates_to.as_deref());
    if let Some(id) = &h.activity_id {
        w.leaf(
            "ActivityId",
            &[(
                "xmlns",
                "http://schemas.microsoft.com/2004/09/ServiceModel/Diagnostics",
            )],
            id,
        );
    }
    if let Some(address) = &h.reply_to {
        w.open("a:ReplyTo", &[])
            .leaf("a:Address", &[], address)
            .close("a:ReplyTo");
    }
    if let Some(to) = &h.to {
        w.leaf("a:To", &[("s:mustUnderstand", "1")], to);
    }
    if let Some(sec) = &h.security {
        w.open(
            "wsse:Security",
            &[("s:mustUnderstand", "1"), ("xmlns:wsse", ns::WSSE)],
        );
        if let Some(ts) = &sec.timestamp {
            w.open("u:Timestamp", &[("u:Id", "_0")])
                .leaf("u:Created", &[], &ts.created)
                .leaf("u:Expires", &[], &ts.expires)
                .close("u:Timestamp");
        }
        if let Some(token) = &sec.username_token {
            w.open("wsse:UsernameToken", &[("u:Id", "uuid-username-token")])
                .leaf("wsse:Username", &[], &token.username)
                .leaf(
                    "wsse:Password",
                    &[("wsse:Type", value::PASSWORD_TEXT)],
                    &token.password,
                )
                .close("wsse:UsernameToken");
        }
        if let Some(bst) = &sec.binary_security_token {
            bst.write(w, "wsse:BinarySecurityToken", false);
        }
        w.close("wsse:Security");
    }
    w.close("s:Header");
}
