use std::ops::Range;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::error::{Error, Result};

/// How deeply elements may nest before a document is refused. Real messages nest about
/// ten deep; the limit keeps hostile input from exhausting the stack of later,
/// recursive readers.
pub const MAX_DEPTH: usize = 128;

/// One element, named by its local name (any namespace prefix dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Local name, e.g. `Action` for `<a:Action>`.
    pub name: String,
    /// Attributes by local name, namespace declarations left out.
    pub attrs: Vec<(String, String)>,
    /// Child elements and text, in document order.
    pub children: Vec<Node>,
    /// Byte range of the element's content in the parsed text (empty for `<x/>`), so
    /// that inline XML payloads can be taken verbatim.
    pub inner: Range<usize>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A nested element.
    Element(Element),
    /// Character data: text, entities and CDATA sections merged.
    Text(String),
}

impl Element {
    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Every child element with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name == name)
    }

    /// The first child element with this local name, or an error naming both.
    pub fn require(&self, name: &str) -> Result<&Element> {
        self.child(name)
            .ok_or_else(|| Error::missing(&self.name, name))
    }

    /// The element's own character data, verbatim.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out
    }

    /// True when the element holds at least one child element.
    pub fn has_elements(&self) -> bool {
        self.elements().next().is_some()
    }

    /// An attribute's value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for `xsi:nil="true"`.
    pub fn is_nil(&self) -> bool {
        self.attr("nil").is_some_and(|v| v.trim() == "true")
    }

    /// A child's text with surrounding white space removed, if the child is there.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(|e| e.text().trim().to_owned())
    }

    /// A child's trimmed text, or an error naming both elements.
    pub fn require_text(&self, name: &str) -> Result<String> {
        self.require(name).map(|e| e.text().trim().to_owned())
    }

    /// A child's trimmed text unless it is absent, nil or empty.
    pub fn child_value(&self, name: &str) -> Option<String> {
        self.child(name)
            .filter(|e| !e.is_nil())
            .map(|e| e.text().trim().to_owned())
            .filter(|t| !t.is_empty())
    }
}

/// Reads one XML document into its root element. Declarations, comments, processing
/// instructions and DOCTYPEs are skipped; the five predefined entities and character
/// references are resolved; anything else is an error, never a panic.
pub fn parse(text: &str) -> Result<Element> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let before = offset(reader.buffer_position());
        let event = reader.read_event().map_err(|e| Error::Xml {
            position: reader.error_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::TooDeep(MAX_DEPTH));
                }
                let at = offset(reader.buffer_position());
                stack.push(element(&start, at)?);
            }
            Event::Empty(start) => {
                let at = offset(reader.buffer_position());
                attach(&mut stack, &mut root, element(&start, at)?)?;
            }
            Event::End(_) => {
                let mut done = stack.pop().ok_or_else(|| Error::Xml {
                    position: before as u64,
                    message: "closing tag without an opening tag".into(),
                })?;
                done.inner.end = before.max(done.inner.start);
                attach(&mut stack, &mut root, done)?;
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content()),
            Event::CData(c) => push_text(&mut stack, &c.xml10_content()),
            Event::GeneralRef(r) => {
                let c = resolve(&r, before)?;
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]));
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(Error::Xml {
            position: text.len() as u64,
            message: format!("<{}> is never closed", open.name),
        });
    }
    root.ok_or_else(|| Error::Xml {
        position: 0,
        message: "no root element".into(),
    })
}

fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

fn element(start: &BytesStart<'_>, content_at: usize) -> Result<Element> {
    let name = start.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| Error::Xml {
            position: content_at as u64,
            message: format!("in <{name}>: {e}"),
        })?;
        let key = attr.key;
        if key.as_ref() == "xmlns" || key.prefix().is_some_and(|p| p.as_ref() == "xmlns") {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| Error::Xml {
                position: content_at as u64,
                message: format!("in <{name}>: {e}"),
            })?;
        attrs.push((key.local_name().as_ref().to_owned(), value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        inner: content_at..content_at,
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, done: Element) -> Result<()> {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(Node::Element(done));
        return Ok(());
    }
    if root.is_some() {
        return Err(Error::Xml {
            position: done.inner.end as u64,
            message: format!("a second root element <{}>", done.name),
        });
    }
    *root = Some(done);
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str) {
    // Text outside the root element (white space between the declaration and the
    // root, say) carries nothing and is dropped.
    let Some(top) = stack.last_mut() else { return };
    if text.is_empty() {
        return;
    }
    match top.children.last_mut() {
        Some(Node::Text(prev)) => prev.push_str(text),
        _ => top.children.push(Node::Text(text.to_owned())),
    }
}

fn resolve(reference: &BytesRef<'_>, at: usize) -> Result<char> {
    let bad = |message: String| Error::Xml {
        position: at as u64,
        message,
    };
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            Ok(None) | Err(_) => Err(bad(format!("bad character reference &{};", &**reference))),
        };
    }
    match &**reference {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(bad(format!("unknown entity &{other};"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_elements_by_local_name_and_merges_text() {
        let doc = r#"<?xml version="1.0"?><!-- hi --><s:Envelope xmlns:s="urn:x" s:a="1"><s:Body>a &amp; b<![CDATA[<c>]]>&#x41;</s:Body></s:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Envelope");
        assert_eq!(root.attr("a"), Some("1"));
        assert_eq!(root.attrs.len(), 1, "xmlns declarations are dropped");
        assert_eq!(root.require("Body").unwrap().text(), "a & b<c>A");
    }

    #[test]
    fn keeps_the_span_of_inline_markup() {
        let doc = "<Data><a x=\"1\">t</a><b/></Data>";
        let root = parse(doc).unwrap();
        assert_eq!(&doc[root.inner.clone()], "<a x=\"1\">t</a><b/>");
    }

    #[test]
    fn refuses_what_is_not_a_document() {
        for bad in [
            "",
            "text",
            "<a>",
            "<a></b>",
            "</a>",
            "<a/><b/>",
            "<a>&foo;</a>",
            "<a>&#0;</a>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn refuses_nesting_past_the_limit() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep), Err(Error::TooDeep(MAX_DEPTH)));
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }
}
