//! Parts shared by the benchmark binaries (`scripts/bench` runs them; see
//! `bench/README.md`):
//!
//! - `native-catalog`: the catalog's business logic natively behind hyper, the ceiling;
//! - `bench-probe`: start-up to first `200`, hot-swap latency, readiness and
//!   quiet waits, CPU accounting around the load generator;
//! - `bench-report`: the markdown report from the raw results;
//! - `bench-probe envelope-memory`: the payload-mode host's memory under the
//!   largest envelopes ([`memory`]).

#![deny(missing_docs, unreachable_pub)]

pub mod cpu;
pub mod loopback;
pub mod memory;
pub mod summary;
