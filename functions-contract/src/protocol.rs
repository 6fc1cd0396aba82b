//! The names the Functions host and a custom handler use with each other:
//! the environment variables the host launches the handler with, the headers
//! it adds to each request, the readiness poll, and how it makes invocation
//! ids and picks the handler's port. One home for them, so that the handler,
//! the local Functions host and the tests cannot drift apart.
//!
//! Read in Azure/azure-functions-host at 89dc438 (4.1037):
//! `src/WebJobs.Script/Workers/Http/HttpWorkerConstants.cs`,
//! `src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs` (`AddHeaders`,
//! `IsWorkerReady`) and `src/WebJobs.Script/WorkerUtilities.cs`.

/// The port the handler must listen on (on 127.0.0.1).
pub const PORT_ENV: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// The id of this launch of the handler.
pub const WORKER_ID_ENV: &str = "FUNCTIONS_CUSTOMHANDLER_WORKER_ID";
/// [`PORT_ENV`] under the name older hosts (the `httpWorker` section) used.
pub const LEGACY_PORT_ENV: &str = "FUNCTIONS_HTTPWORKER_PORT";
/// [`WORKER_ID_ENV`] under its older name.
pub const LEGACY_WORKER_ID_ENV: &str = "FUNCTIONS_HTTPWORKER_ID";
/// The function app's root folder.
pub const APP_ROOT_ENV: &str = "FUNCTIONS_APP_ROOT_PATH";

/// The invocation id the host adds to every request it sends the handler.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";
/// The host's version, added to every request.
pub const HOST_VERSION_HEADER: &str = "x-azure-functions-hostversion";
/// The product the host appends to `User-Agent`.
pub const USER_AGENT_PRODUCT: &str = "Azure-Functions-Host";
/// The function key header (`AuthenticationLevelHandler.cs`).
pub const FUNCTION_KEY_HEADER: &str = "x-functions-key";
/// The function key query parameter.
pub const FUNCTION_KEY_PARAMETER: &str = "code";

/// What the host polls until the handler answers: `GET /`, any status.
pub const READINESS_PATH: &str = "/";

/// A new GUID (version 4, RFC 4122 variant) as .NET's `Guid.ToString()`
/// prints it: what the host uses for invocation and worker ids.
pub fn new_guid() -> String {
    let n = fastrand::u128(..) & !(0xf << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A loopback port nobody listens on now, picked as the host picks the
/// handler's (`WorkerUtilities.GetUnusedTcpPort`): bind port 0, read the
/// port, let go.
pub fn unused_tcp_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_look_like_dotnet_guids() {
        let guid = new_guid();
        assert_eq!(guid.len(), 36);
        let groups: Vec<_> = guid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&guid[14..15], "4", "{guid} is version 4");
        assert!(
            matches!(&guid[19..20], "8" | "9" | "a" | "b"),
            "{guid} is RFC 4122"
        );
        assert_ne!(new_guid(), guid);
    }

    #[test]
    fn unused_ports_can_be_bound() {
        let port = unused_tcp_port().expect("a port");
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
    }
}
