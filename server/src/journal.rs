//! The journal: an append-only, typed record of everything that happened.
