//! The device model: registry, virtual C: drive, installed programs, installer runtime.
