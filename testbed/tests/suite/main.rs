//! The testbed's integration tests as one test binary (one link, one copy on disk, where
//! a binary per file cost gigabytes): each module is one area, run alone with
//! `cargo test -p testbed --test suite <module>::`.

#[path = "../../../server/tests/suite/common/cluster.rs"]
mod cluster;
mod common;
#[path = "../../../server/tests/suite/common/seeded.rs"]
mod seeded;

mod agent_server;
mod compliance;
mod console;
mod demo;
mod esp;
mod fleet;
mod groups;
mod health;
mod inventory;
mod kill_campaign;
mod lifecycle;
mod remediations;
mod remote;
mod restarts;
mod scenarios;
mod scripts;
mod server_console;
mod sign;
mod store_apps;
mod time_zones;
mod users;
mod win32;
mod world;
