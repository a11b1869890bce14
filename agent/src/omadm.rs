//! The OMA-DM client: management sessions over HTTPS.
