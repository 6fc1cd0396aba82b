//! Dispatch: one request, one fresh instance. A new `Store` holds a new
//! [`Sandbox`]; the instance is made from the pre-instantiated guest and
//! `wasi:http/incoming-handler.handle` runs in its own task, so the guest can
//! keep streaming the body after it has handed over the response head.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::body::Incoming;
use tokio::sync::oneshot;
use tracing::{Instrument as _, Span};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use crate::body::HostBody;
use crate::guest::Guest;
use crate::guest_output::GuestOutput;
use crate::sandbox::Sandbox;

/// Why a guest produced no response.
#[derive(Debug, thiserror::Error)]
pub enum GuestFailure {
    /// No instance could be made from the component.
    #[error("the component could not be instantiated: {0:#}")]
    Instantiation(wasmtime::Error),
    /// The guest trapped (or panicked) before it set a response.
    #[error("the component trapped before it sent a response: {0:?}")]
    Trap(wasmtime::Error),
    /// The guest returned without calling `response-outparam.set`.
    #[error("the component returned without sending a response")]
    NoResponse,
    /// The guest set an error code instead of a response.
    #[error("the component answered with the error code {0:?}")]
    ErrorCode(ErrorCode),
    /// The host could not hand the request to the guest.
    #[error("the request could not be passed to the component: {0:#}")]
    Host(wasmtime::Error),
}

/// Runs `request` in a fresh instance of `guest` and returns its response.
/// Guest output goes to `output`; the guest's work is traced in `span`.
pub async fn run(
    guest: Arc<Guest>,
    request: hyper::Request<Incoming>,
    scheme: Scheme,
    output: &GuestOutput,
    span: Span,
) -> Result<hyper::Response<HostBody>, GuestFailure> {
    let mut store = Store::new(guest.pre().engine(), Sandbox::new(output));
    let (sender, receiver) = oneshot::channel();
    let head_sent = Arc::new(AtomicBool::new(false));
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(scheme, request)
        .map_err(GuestFailure::Host)?;
    let outparam = {
        let head_sent = head_sent.clone();
        store
            .data_mut()
            .http()
            .new_response_outparam_from_callback(move |response| {
                head_sent.store(true, Ordering::Release);
                let _ = sender.send(response);
            })
            .map_err(GuestFailure::Host)?
    };

    let task = tokio::spawn(
        async move {
            let proxy = guest.pre().instantiate_async(&mut store).await.map_err(GuestFailure::Instantiation)?;
            let result = proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await;
            match result {
                Ok(()) => Ok(()),
                // The head is gone: all that is left is to cut the body off and say why.
                Err(trap) if head_sent.load(Ordering::Acquire) => {
                    tracing::error!(error = ?trap, "The component failed after it sent the response head; the body was cut off");
                    Ok(())
                }
                Err(trap) => Err(GuestFailure::Trap(trap)),
            }
        }
        .instrument(span),
    );

    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(GuestFailure::ErrorCode(code)),
        // The store, and with it the sender, is gone: the task says why.
        Err(_) => match task.await {
            Ok(Ok(())) => Err(GuestFailure::NoResponse),
            Ok(Err(failure)) => Err(failure),
            Err(join_error) => Err(GuestFailure::Host(wasmtime::Error::msg(
                join_error.to_string(),
            ))),
        },
    }
}
