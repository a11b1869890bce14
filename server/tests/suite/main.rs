//! The server's integration tests as one test binary (one link, one copy on disk): each
//! module is one area, run alone with `cargo test -p server --test suite <module>::`.

mod common;

mod apps;
mod durability;
mod enrollment;
mod graph_sdk;
mod management;
mod openapi;
mod postgres;
mod restart;
