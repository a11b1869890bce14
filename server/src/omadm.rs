//! OMA-DM management sessions and per-device command queues.
