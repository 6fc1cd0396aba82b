//! API Management as code (`apim/`): the policies and the Bicep that deploys
//! them are checked against each other, against the guest they front (its
//! OpenAPI document, max-age, header names and error envelope) and against the
//! function app's routes; and the headers the policies send the backend are
//! sent to the real handler serving the catalog component.
//!
//! Neither APIM nor the Bicep compiler runs here, so [`policy`] reads the
//! policy XML and [`bicep`] reads just enough Bicep to follow the wiring.

/// The binary under test, built by cargo from this source before the tests run.
const HANDLER: test_harness::Handler =
    test_harness::Handler::new(env!("CARGO_BIN_EXE_wasm-handler"));

mod backend;
mod bicep;
mod files;
mod infrastructure;
mod local_gateway;
mod openapi;
mod policies;
mod policy;
