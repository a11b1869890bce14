//! The DM tree and its configuration service providers.
