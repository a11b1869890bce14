//! The agent's errors, sorted into what a person can act on.

use std::fmt;

/// Why an agent operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError {
    /// The server could not be reached.
    Unreachable {
        /// The URL.
        url: String,
        /// The transport's explanation.
        reason: String,
    },
    /// The server's certificate is not trusted.
    Untrusted {
        /// The URL.
        url: String,
        /// The TLS explanation.
        reason: String,
    },
    /// The server refused, with a SOAP fault.
    Fault {
        /// The subcode, e.g. `s:Authentication`.
        subcode: String,
        /// The reason given.
        reason: String,
    },
    /// The server said something the protocol does not allow.
    Protocol(String),
    /// Authentication on a management session failed.
    Authentication(String),
    /// The device is not enrolled.
    NotEnrolled,
    /// Bad configuration (a flag, a file).
    Config(String),
    /// The device directory could not be read or written.
    Io(std::io::Error),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Unreachable { url, reason } => write!(f, "cannot reach {url}: {reason}"),
            AgentError::Untrusted { url, reason } => {
                write!(f, "the certificate of {url} is not trusted (pass --ca with the server's pki/ca.pem): {reason}")
            }
            AgentError::Fault { subcode, reason } => {
                write!(f, "the server refused ({subcode}): {reason}")
            }
            AgentError::Protocol(what) => write!(f, "protocol error: {what}"),
            AgentError::Authentication(what) => write!(f, "authentication failed: {what}"),
            AgentError::NotEnrolled => write!(
                f,
                "the device is not enrolled (run `tenantless-agent enroll` first)"
            ),
            AgentError::Config(what) => write!(f, "{what}"),
            AgentError::Io(e) => write!(f, "device directory: {e}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<std::io::Error> for AgentError {
    fn from(e: std::io::Error) -> Self {
        AgentError::Io(e)
    }
}
