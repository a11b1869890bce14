//! The one error type of every parser in this crate.

use std::fmt;

/// What went wrong while reading a message. Parsers return this instead of panicking,
/// whatever bytes they are given; the message names the element at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not in an encoding the parser reads (UTF-8 or UTF-16).
    Encoding(String),
    /// The text is not well-formed XML.
    Xml {
        /// Byte offset (in the decoded UTF-8 text) near the fault.
        position: u64,
        /// What the XML reader said.
        message: String,
    },
    /// Elements are nested deeper than the parser accepts.
    TooDeep(usize),
    /// The document's root, or a message's body, is not the element expected.
    Unexpected {
        /// The element the message kind needs.
        expected: String,
        /// The element that was there.
        found: String,
    },
    /// A required child element is absent.
    Missing {
        /// The parent element.
        parent: String,
        /// The child that was not found.
        element: String,
    },
    /// An element or attribute is present but its value is unusable.
    Invalid {
        /// The element (or `element@attribute`).
        element: String,
        /// The value found, truncated for display.
        value: String,
        /// Why it is unusable.
        reason: String,
    },
}

impl Error {
    pub(crate) fn missing(parent: &str, element: &str) -> Self {
        Error::Missing {
            parent: parent.to_owned(),
            element: element.to_owned(),
        }
    }

    pub(crate) fn invalid(element: &str, value: &str, reason: impl Into<String>) -> Self {
        let mut shown: String = value.chars().take(64).collect();
        if shown.len() < value.len() {
            shown.push('…');
        }
        Error::Invalid {
            element: element.to_owned(),
            value: shown,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Encoding(what) => write!(f, "unsupported text encoding: {what}"),
            Error::Xml { position, message } => {
                write!(f, "malformed XML near byte {position}: {message}")
            }
            Error::TooDeep(limit) => write!(f, "XML nested deeper than {limit} elements"),
            Error::Unexpected { expected, found } => {
                write!(f, "expected <{expected}>, found <{found}>")
            }
            Error::Missing { parent, element } => {
                write!(f, "<{parent}> has no <{element}>")
            }
            Error::Invalid {
                element,
                value,
                reason,
            } => write!(f, "<{element}> has an unusable value {value:?}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
