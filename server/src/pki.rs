//! The certificate authority: server TLS certificates and signed device certificates.
