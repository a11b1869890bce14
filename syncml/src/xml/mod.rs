//! A small, namespace-agnostic XML layer: bytes in any encoding real clients use are
//! decoded to text, read into a tree of elements named by their local names (so any
//! namespace prefix works), and written back compactly with correct escaping.

mod decode;
mod dom;
mod pretty;
mod writer;

pub use decode::decode;
pub use dom::{parse, Element, Node, MAX_DEPTH};
pub use pretty::pretty;
pub use writer::{escape_text, XmlWriter};
