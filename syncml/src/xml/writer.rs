/// Builds compact XML text. Callers open and close elements in order; text and
/// attribute values are escaped here, so no caller escapes by hand.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// An empty document.
    pub fn new() -> Self {
        XmlWriter::default()
    }

    /// Writes `<?xml version="1.0" encoding="utf-8"?>`.
    pub fn declaration(&mut self) -> &mut Self {
        self.out
            .push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        self
    }

    /// Opens `<name attrs...>`.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.tag_start(name, attrs);
        self.out.push('>');
        self
    }

    /// Closes `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Writes `<name attrs.../>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.tag_start(name, attrs);
        self.out.push_str("/>");
        self
    }

    /// Writes `<name attrs...>text</name>` with the text escaped.
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.open(name, attrs).text(text).close(name)
    }

    /// Writes `<name>text</name>` when there is a value, nothing otherwise.
    pub fn leaf_opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text {
            self.leaf(name, &[], text);
        }
        self
    }

    /// Writes escaped character data.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text, false);
        self
    }

    /// Writes markup verbatim: the caller vouches that it is well-formed.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// The document written so far.
    pub fn finish(self) -> String {
        self.out
    }

    fn tag_start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value, true);
            self.out.push('"');
        }
    }
}

/// Escapes text for use as element content.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text, false);
    out
}

/// Escapes markup characters; a carriage return is written as a character reference so
/// that it survives XML end-of-line normalisation, and in attributes so are tab and
/// line feed (which attribute normalisation would turn into spaces).
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let mut w = XmlWriter::new();
        w.leaf("a", &[("k", "x\"<\n")], "1 < 2 & 3 > \r\n");
        assert_eq!(
            w.finish(),
            "<a k=\"x&quot;&lt;&#10;\">1 &lt; 2 &amp; 3 &gt; &#13;\n</a>"
        );
    }
}
