//! A running chain: gateway -> functions-emulator -> wasm-handler ->
//! catalog component, and requests to it as a client of APIM sends them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use apim_gateway::config::{LocalFile, Setting};
use apim_gateway::identity::{LocalIdentity, TokenRequest};
use bytes::Bytes;
use test_harness::http::{self, Response};
use test_harness::{HandlerProcess, TempApp, guests};

/// The gateway binary, built by cargo from this source.
pub const GATEWAY: &str = env!("CARGO_BIN_EXE_apim-gateway");

/// The repository's local file.
pub fn local_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim/local-gateway.json")
}

/// A named value of the local file, resolved as the gateway does.
pub fn named_value(name: &str) -> String {
    let file = LocalFile::load(&local_file()).expect("the local file loads");
    let value = file
        .named_values
        .get(name)
        .unwrap_or_else(|| panic!("no named value {name}"));
    match &value.value {
        Setting::Literal(text) => text.clone(),
        Setting::Env { default, .. } => default.clone().unwrap_or_default(),
    }
}

/// What a chain is started with.
#[derive(Default)]
pub struct Options {
    /// A local file other than the repository's.
    pub local_file: Option<PathBuf>,
    /// The backend URL (`CATALOG_BACKEND_URL`) instead of the emulator's.
    pub backend_url: Option<String>,
    /// More environment for the gateway.
    pub env: Vec<(String, String)>,
    /// The component the function app serves instead of the catalog.
    pub component: Option<&'static str>,
}

/// A running chain; every process is killed when it is dropped.
pub struct Chain {
    /// The gateway.
    pub gateway: HandlerProcess,
    /// The Functions host stand-in, and through it the handler.
    pub emulator: HandlerProcess,
    /// The subscription key of `catalog-first-client`.
    pub subscription_key: String,
    /// The host key the emulator checks and the backend entity sends.
    pub function_key: String,
    identity: LocalIdentity,
    _app: TempApp,
    state: TempApp,
}

impl Chain {
    /// The chain with the repository's local file.
    pub async fn start() -> Self {
        Chain::start_with(Options::default()).await
    }

    /// The chain with `options`.
    pub async fn start_with(options: Options) -> Self {
        let app = TempApp::function_app("apim-chain", options.component.unwrap_or(guests::CATALOG));
        let function_key = format!("fk-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let subscription_key = format!("sk-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let emulator_port = test_harness::free_port();
        let mut command = Command::new(test_harness::current_binary("functions-emulator"));
        command
            .arg(&app.root)
            .arg("--port")
            .arg(emulator_port.to_string())
            .arg("--enable-auth")
            .arg("--host-key")
            .arg(&function_key)
            .env_remove("FUNCTIONS_EMULATOR_PORT");
        for variable in functions_contract::PLAN_VARIABLES {
            command.env_remove(variable);
        }
        let emulator = HandlerProcess::launch(command, emulator_port).await;
        emulator
            .wait_for_stdout(|line| line.ends_with("] Worker process started and initialized."))
            .await;

        let state = TempApp::empty("apim-gateway-state");
        let local_file = options.local_file.unwrap_or_else(local_file);
        let gateway_port = test_harness::free_port();
        let mut command = Command::new(GATEWAY);
        command
            .arg("serve")
            .arg("--config")
            .arg(&local_file)
            .arg("--port")
            .arg(gateway_port.to_string())
            .arg("--state-dir")
            .arg(&state.root)
            .env(
                "CATALOG_BACKEND_URL",
                options
                    .backend_url
                    .unwrap_or_else(|| format!("http://127.0.0.1:{emulator_port}")),
            )
            .env("CATALOG_FUNCTION_KEY", &function_key)
            .env("CATALOG_SUBSCRIPTION_KEY", &subscription_key)
            .env_remove("CATALOG_BACKEND_AUTH")
            .envs(options.env);
        let gateway = HandlerProcess::launch(command, gateway_port).await;
        let issuer = LocalFile::load(&local_file)
            .expect("the local file loads")
            .local_identity
            .issuer;
        let identity = LocalIdentity::open(&state.root, &issuer).expect("the gateway made its key");
        Chain {
            gateway,
            emulator,
            subscription_key,
            function_key,
            identity,
            _app: app,
            state,
        }
    }

    /// The gateway's state folder (its identity's key).
    pub fn state_dir(&self) -> &Path {
        &self.state.root
    }

    /// A token the policy accepts: the local identity's, for the API's
    /// audience, with the required role.
    pub fn token(&self) -> String {
        self.token_with(|_| {})
    }

    /// A token changed by `change`.
    pub fn token_with(&self, change: impl FnOnce(&mut TokenRequest)) -> String {
        let mut request = TokenRequest {
            audience: named_value("catalog-jwt-audience"),
            subject: "chain-test".to_owned(),
            roles: vec![named_value("catalog-required-role")],
            scopes: Vec::new(),
            lifetime: Duration::from_secs(600),
            issuer: None,
            issued_ago: Duration::ZERO,
            not_before_in: Duration::ZERO,
        };
        change(&mut request);
        self.identity.issue(&request).expect("a token")
    }

    /// A GET through the gateway with a valid subscription key and token
    /// and `headers`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let authorization = format!("Bearer {}", self.token());
        self.get_with(path, Some(&authorization), headers).await
    }

    /// A GET with a valid subscription key, `authorization` as the
    /// Authorization header (none when `None`), and `headers`.
    pub async fn get_with(
        &self,
        path: &str,
        authorization: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut all = vec![(
            "Ocp-Apim-Subscription-Key".to_owned(),
            self.subscription_key.clone(),
        )];
        all.extend(authorization.map(|value| ("Authorization".to_owned(), value.to_owned())));
        all.extend(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        self.send("GET", path, &all).await
    }

    /// Any request through the gateway, with exactly `headers`.
    pub async fn send(&self, method: &str, path: &str, headers: &[(String, String)]) -> Response {
        let mut builder = ::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{}", self.gateway.port()));
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Bytes::new()).expect("a request");
        http::send(self.gateway.port(), request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Invocations the Functions host has run so far.
    pub fn invocations(&self) -> usize {
        self.emulator
            .stdout()
            .iter()
            .filter(|line| line.contains("Executing 'Functions."))
            .count()
    }

    /// Invocations the Functions host has run, once every earlier one is
    /// in the console: it sends one more request that reaches the function
    /// (health, anonymous and never cached), waits for the guest's log line
    /// of it, and does not count it. The console is read as it arrives, so
    /// a bare count could miss a request that did reach the function.
    pub async fn settled_invocations(&self) -> usize {
        let marker = format!("settle-{:016x}", fastrand::u64(..));
        let response = self
            .get(
                "/catalog/api/catalog/health",
                &[("x-correlation-id", &marker)],
            )
            .await;
        assert_eq!(
            response.status, 200,
            "the settling request: {:?}",
            response.body
        );
        self.guest_logged(&[&format!("correlation_id={marker}")])
            .await;
        self.invocations() - 1
    }

    /// The `LastError.Reason` of each policy error the gateway has logged,
    /// once it has logged `count` of them.
    pub async fn reasons(&self, count: usize) -> Vec<String> {
        let is_error = |line: &str| line.contains("a policy raised an error");
        self.gateway.wait_for_stderr_lines(count, is_error).await;
        self.gateway
            .stderr()
            .iter()
            .filter(|line| is_error(line))
            .filter_map(|line| {
                line.split("reason=")
                    .nth(1)?
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Everything every process printed.
    pub fn consoles(&self) -> Vec<String> {
        let mut lines = self.emulator.stdout();
        lines.extend(self.emulator.stderr());
        lines.extend(self.gateway.stdout());
        lines.extend(self.gateway.stderr());
        lines
    }

    /// Waits until the guest has logged a line with every one of `parts`.
    pub async fn guest_logged(&self, parts: &[&str]) -> String {
        self.emulator
            .wait_for_stdout(|line| {
                line.contains("Handled APIM backend request")
                    && parts.iter().all(|p| line.contains(p))
            })
            .await
    }
}

/// A copy of the repository's local file with its paths made absolute,
/// changed by `change`, written to `folder`; its path.
pub fn local_file_variant(
    folder: &TempApp,
    change: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let apim = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim");
    let text = std::fs::read_to_string(local_file()).expect("reading the local file");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let absolute = |value: &mut serde_json::Value| {
        if let Some(relative) = value.as_str() {
            *value = serde_json::Value::String(apim.join(relative).display().to_string());
        }
    };
    absolute(&mut json["policy"]);
    for api in json["apis"].as_object_mut().expect("apis").values_mut() {
        absolute(&mut api["openapi"]);
        absolute(&mut api["policy"]);
        for file in api["operationPolicies"]
            .as_object_mut()
            .expect("operation policies")
            .values_mut()
        {
            absolute(file);
        }
    }
    change(&mut json);
    let path = folder.root.join("local-gateway.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("JSON")).expect("writing");
    path
}

/// Asserts the gateway's problem+json: status, correlation id, and that
/// it came with the headers global.xml's on-error sets.
pub fn assert_gateway_problem(
    response: &Response,
    status: u16,
    correlation_id: &str,
) -> serde_json::Value {
    let problem = response.assert_problem(status, Some(correlation_id));
    assert_eq!(response.header("x-correlation-id"), Some(correlation_id));
    problem
}
