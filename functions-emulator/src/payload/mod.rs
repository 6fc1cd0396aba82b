//! Payload mode: the host POSTs a JSON description of the invocation to
//! `/{FunctionName}` and reads the outputs from the JSON answer
//! (azure-functions-host `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs`).
//! Used for every function that is not forwarded.

pub(crate) mod request;
pub(crate) mod response;

pub(crate) use request::{SystemData, TriggerRequest, envelope};
pub(crate) use response::HandlerResult;
