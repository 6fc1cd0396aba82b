//! The catalog backend: the business logic behind `GET /api/catalog/{item_id}`,
//! `GET /api/catalog/health` and `GET /api/openapi.json`.
//!
//! Everything but [`component`] is plain Rust, unit-tested natively with
//! `cargo test -p catalog`; `component` is the thin wasi:http 0.2 glue compiled
//! only for `wasm32` (`guest/p3` is the 0.3 one).

#![deny(missing_docs, unreachable_pub)]

pub mod api;
pub mod catalog;
pub mod conditional;
mod item_id;
mod json;
pub mod log;
pub mod openapi;
pub mod problem;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;

pub use item_id::{ITEM_ID_PATTERN, parse_item_id};
