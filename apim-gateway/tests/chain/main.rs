//! The whole chain on loopback: the real `apim-gateway` running the
//! repository's policies (`apim/policies/`, `apim/local-gateway.json`) in
//! front of the real `functions-emulator`, which launches the real
//! `wasm-handler` serving the catalog component built from source. One
//! test per gateway rule of the recipe; each cites the policy reference page
//! whose behaviour it checks.

mod backend;
mod cache;
mod correlation;
mod errors;
mod rate_limit;
mod startup;
mod support;
mod tokens;
