use super::dom::{parse, Element, Node};
use super::writer::XmlWriter;
use crate::error::Result;

/// Re-indents an XML document for people to read: one element per line, two spaces
/// per level, text kept on its element's line. Elements are shown by local name
/// (namespace declarations and prefixes dropped), which is how SyncML viewers show them.
pub fn pretty(text: &str) -> Result<String> {
    let root = parse(text)?;
    let mut out = String::new();
    write(&root, 0, &mut out);
    Ok(out)
}

fn write(el: &Element, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let attrs: Vec<(&str, &str)> = el
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut tag = XmlWriter::new();
    if el.children.is_empty() {
        tag.empty(&el.name, &attrs);
        out.push_str(&format!("{indent}{}\n", tag.finish()));
        return;
    }
    if !el.has_elements() {
        tag.leaf(&el.name, &attrs, el.text().trim());
        out.push_str(&format!("{indent}{}\n", tag.finish()));
        return;
    }
    tag.open(&el.name, &attrs);
    out.push_str(&format!("{indent}{}\n", tag.finish()));
    for child in &el.children {
        match child {
            Node::Element(e) => write(e, depth + 1, out),
            Node::Text(t) if !t.trim().is_empty() => {
                let mut w = XmlWriter::new();
                w.text(t.trim());
                out.push_str(&format!("{indent}  {}\n", w.finish()));
            }
            Node::Text(_) => {}
        }
    }
    out.push_str(&format!("{indent}</{}>\n", el.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_elements_and_keeps_text_inline() {
        let doc = r#"<SyncML xmlns="SYNCML:SYNCML1.2"><SyncBody><Alert><CmdID>2</CmdID><Data>1201</Data></Alert><Final/></SyncBody></SyncML>"#;
        assert_eq!(
            pretty(doc).unwrap(),
            "<SyncML>\n  <SyncBody>\n    <Alert>\n      <CmdID>2</CmdID>\n      <Data>1201</Data>\n    </Alert>\n    <Final/>\n  </SyncBody>\n</SyncML>\n"
        );
        assert!(pretty("<a>").is_err());
    }
}
