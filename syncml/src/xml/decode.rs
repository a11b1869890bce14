use std::borrow::Cow;

use crate::error::{Error, Result};

/// Turns message bytes into text. UTF-8 (with or without a byte-order mark) and UTF-16
/// (either byte order, told by the mark or by the first `<`) are read; an XML
/// declaration that names UTF-16 over bytes that are really UTF-8 is tolerated, as the
/// bytes decide.
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>> {
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => utf8(rest),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [b'<', 0, ..] => utf16(bytes, u16::from_le_bytes),
        [0, b'<', ..] => utf16(bytes, u16::from_be_bytes),
        _ => utf8(bytes),
    }
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>> {
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|e| Error::Encoding(format!("invalid UTF-8 at byte {}", e.valid_up_to())))
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<Cow<'static, str>> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::Encoding(
            "UTF-16 text with an odd number of bytes".into(),
        ));
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map(Cow::Owned)
        .map_err(|_| Error::Encoding("unpaired UTF-16 surrogate".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { vec![] };
        out.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    #[test]
    fn reads_utf8_with_and_without_bom() {
        assert_eq!(decode(b"<a/>").unwrap(), "<a/>");
        assert_eq!(decode(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
    }

    #[test]
    fn reads_utf16_in_both_orders() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><a>é</a>";
        assert_eq!(decode(&utf16le(doc, true)).unwrap(), doc);
        assert_eq!(decode(&utf16le(doc, false)).unwrap(), doc);
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(doc.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&be).unwrap(), doc);
    }

    #[test]
    fn refuses_broken_text() {
        assert!(decode(b"<a>\xFF</a>").is_err());
        assert!(decode(&[0xFF, 0xFE, b'<']).is_err());
        assert!(decode(&[0xFF, 0xFE, 0x00, 0xD8]).is_err());
    }
}
