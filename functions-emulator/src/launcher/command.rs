//! The handler's command line, working directory and environment, as the
//! Functions host builds them from `customHandler.description`
//! (azure-functions-host at 89dc438: `src/WebJobs.Script/Workers/Http/HttpWorkerDescription.cs`,
//! `src/WebJobs.Script/Workers/ProcessManagement/DefaultWorkerProcessFactory.cs`,
//! `src/WebJobs.Script/Workers/Http/Configuration/HttpWorkerOptionsSetup.cs`).

use std::path::{Path, PathBuf};

use functions_contract::{AppConfig, LocalSettings, protocol};

/// Environment variables of the emulator itself, which the real host's
/// environment would not have and the handler must not inherit.
const OWN_VARIABLE_PREFIX: &str = "FUNCTIONS_EMULATOR_";

/// The environment of the host process: the real one plus the
/// `local.settings.json` values `func start` adds (names already set win).
#[derive(Debug, Clone, Default)]
pub(crate) struct HostEnvironment {
    added: Vec<(String, String)>,
}

impl HostEnvironment {
    /// The real environment plus `settings`.
    pub(crate) fn new(settings: &LocalSettings) -> Self {
        HostEnvironment {
            added: settings.values_to_add(|name| std::env::var_os(name).is_some()),
        }
    }

    /// The value of `name`, as the host process sees it.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| {
            self.added
                .iter()
                .find(|(added, _)| added == name)
                .map(|(_, value)| value.clone())
        })
    }
}

/// How the handler is started; the same for every restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// An absolute path, or a command name looked up in `PATH`.
    pub(crate) program: PathBuf,
    /// The argument string, `%NAME%` of the host's environment expanded.
    line: String,
    pub(crate) working_directory: PathBuf,
    /// The app root, for `FUNCTIONS_APP_ROOT_PATH`.
    pub(crate) app_root: PathBuf,
    /// Variables added to the inherited environment.
    pub(crate) env: Vec<(String, String)>,
}

impl Launch {
    /// The launch `app` describes, in the host environment `env`.
    pub(crate) fn new(app: &AppConfig, env: &HostEnvironment) -> Self {
        let description = &app.host.handler;
        let lookup = |name: &str| env.get(name);
        let root = &app.root;
        let worker_directory = join(root, description.worker_directory.as_deref());
        let working_directory = join(root, description.working_directory.as_deref());

        // A relative executable that exists under the worker directory is
        // made absolute; otherwise .NET's Process resolves it: beside the
        // host's own executable, in the host's working directory (not the
        // handler's), then in PATH.
        let executable = expand_variables(&description.default_executable_path, &lookup);
        let candidate = worker_directory.join(&executable);
        let program = if Path::new(&executable).is_relative() && candidate.is_file() {
            candidate
        } else {
            resolve_like_dotnet(&executable)
        };

        // The host joins everything into one argument string (the worker
        // path in quotes), deletes `%x%` tokens left unexpanded, and the
        // process start splits it again by Windows command-line rules, so
        // `"arguments": ["--flag value"]` passes two arguments.
        let mut line = String::new();
        for argument in &description.arguments {
            line.push(' ');
            line.push_str(&expand_variables(argument, &lookup));
        }
        if let Some(worker_path) = &description.default_worker_path {
            // Passed as written, in quotes: a relative worker path is
            // relative to the handler's working directory.
            let worker_path = expand_variables(worker_path, &lookup);
            line.push_str(&format!(" \"{worker_path}\""));
        }
        for argument in &description.worker_arguments {
            line.push(' ');
            line.push_str(&expand_variables(argument, &lookup));
        }
        Launch {
            program,
            line,
            working_directory,
            app_root: root.clone(),
            env: env.added.clone(),
        }
    }

    /// The variables the host adds for one launch: `port` for the handler to
    /// listen on and a fresh worker id, under the names current and older
    /// hosts use, and the app root.
    fn launch_variables(&self, port: u16, worker_id: &str) -> [(&'static str, String); 5] {
        [
            (protocol::PORT_ENV, port.to_string()),
            (protocol::WORKER_ID_ENV, worker_id.to_owned()),
            (protocol::LEGACY_PORT_ENV, port.to_string()),
            (protocol::LEGACY_WORKER_ID_ENV, worker_id.to_owned()),
            (protocol::APP_ROOT_ENV, self.app_root.display().to_string()),
        ]
    }

    /// The arguments of one launch: `%NAME%` of each launch variable
    /// replaced (case-sensitively, as `string.Replace`), then what is left of
    /// `%...%` deleted, then the string split into arguments
    /// (DefaultWorkerProcessFactory.CreateWorkerProcess).
    pub(crate) fn args(&self, port: u16, worker_id: &str) -> Vec<String> {
        let mut line = self.line.clone();
        for (name, value) in self.launch_variables(port, worker_id) {
            line = line.replace(&format!("%{name}%"), &value);
        }
        split_command_line(&delete_unresolved(&line))
    }

    /// The command for one launch.
    pub(crate) fn command(&self, port: u16, worker_id: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(self.args(port, worker_id))
            .current_dir(&self.working_directory)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .envs(self.launch_variables(port, worker_id));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(OWN_VARIABLE_PREFIX) {
                command.env_remove(name);
            }
        }
        command
    }

    /// The command line of one launch, for the console.
    pub(crate) fn display(&self, port: u16, worker_id: &str) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args(port, worker_id))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `base` joined with a relative `path` (an absolute one replaces it);
/// absent or empty means `base`.
fn join(base: &Path, path: Option<&str>) -> PathBuf {
    match path {
        Some(path) if !path.is_empty() => base.join(path),
        _ => base.to_owned(),
    }
}

/// `Environment.ExpandEnvironmentVariables`: each `%NAME%` whose NAME is set
/// becomes its value; others stay as they are.
pub(crate) fn expand_variables(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    replace_tokens(text, |name| lookup(name).filter(|_| !name.is_empty()))
}

/// Deletes what `SanitizeExpandedArgument` deletes after expansion: every
/// match of `%(.+?)%` in the whole argument string, spaces and argument
/// boundaries included (`["50%", "x%"]` leaves `" 50"`).
pub(crate) fn delete_unresolved(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        // `.+?`: at least one character before the closing `%`.
        match after.char_indices().skip(1).find(|&(_, c)| c == '%') {
            Some((end, _)) if !after.is_empty() => {
                out.push_str(&rest[..start]);
                rest = &after[end + 1..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out
}

/// `Process.Start`'s lookup of a relative program (dotnet/runtime
/// `Process.Unix.cs` `ResolvePath`): beside this process's executable, in
/// its working directory, then in `PATH`; a path with a `/` is taken as it is.
fn resolve_like_dotnet(program: &str) -> PathBuf {
    let path = Path::new(program);
    if path.is_absolute() || program.contains('/') {
        return path.to_owned();
    }
    let beside_host = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(program)));
    let in_cwd = std::env::current_dir().ok().map(|dir| dir.join(program));
    let in_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .collect::<Vec<_>>()
    });
    beside_host
        .into_iter()
        .chain(in_cwd)
        .chain(in_path)
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| path.to_owned())
}

/// Replaces each `%name%` for which `replace` gives a text. A `%` that does
/// not start a replaced token stays, and the `%` that ended it may start the
/// next one, as in .NET's expansion.
fn replace_tokens(text: &str, replace: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let replaced = after
            .find('%')
            .and_then(|end| replace(&after[..end]).map(|value| (end, value)));
        match replaced {
            Some((end, value)) => {
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits an argument string as .NET's `Process` does on Unix (the Windows
/// C runtime rules): white space separates; double quotes group; `\"` is a
/// quote; backslashes are literal unless they precede a quote.
pub(crate) fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let mut backslashes = 1;
                    while chars.next_if_eq(&'\\').is_some() {
                        backslashes += 1;
                    }
                    if chars.peek() == Some(&'"') {
                        arg.extend(std::iter::repeat_n('\\', backslashes / 2));
                        if backslashes % 2 == 1 {
                            arg.push('"');
                            chars.next();
                        }
                    } else {
                        arg.extend(std::iter::repeat_n('\\', backslashes));
                    }
                }
                '"' if quoted && chars.peek() == Some(&'"') => {
                    arg.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => break,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use functions_contract::HostConfig;

    fn app(root: &Path, description: serde_json::Value) -> AppConfig {
        AppConfig {
            root: root.to_owned(),
            host: HostConfig::from_json(&json!({"customHandler": {"description": description}}))
                .expect("valid"),
            functions: Vec::new(),
            broken: Vec::new(),
            settings: LocalSettings::default(),
        }
    }

    fn environment(values: &[(&str, &str)]) -> HostEnvironment {
        HostEnvironment {
            added: values
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn variables_expand_and_unresolved_tokens_are_deleted() {
        let lookup = |name: &str| (name == "COMPONENT").then(|| "catalog.wasm".to_owned());
        assert_eq!(
            expand_variables("--component %COMPONENT% %MISSING% 100%", &lookup),
            "--component catalog.wasm %MISSING% 100%"
        );
        assert_eq!(expand_variables("%A%COMPONENT%", &lookup), "%Acatalog.wasm");
        assert_eq!(delete_unresolved(" --a %MISSING% --b"), " --a  --b");
        // `%(.+?)%` across arguments: `% of 50%` is a match too.
        assert_eq!(delete_unresolved(" --b 100% of 50%"), " --b 100");
        assert_eq!(delete_unresolved(" 50% x%"), " 50");
        assert_eq!(
            delete_unresolved(" a%%b"),
            " a%%b",
            "an empty name is no match"
        );
    }

    #[test]
    fn argument_strings_split_like_dotnet() {
        assert_eq!(
            split_command_line(r#" serve  --flag value "/app dir/x.js" a\b "q\"uote" \\"s p" """#),
            [
                "serve",
                "--flag",
                "value",
                "/app dir/x.js",
                r"a\b",
                "q\"uote",
                r"\s p",
                ""
            ]
        );
        assert!(split_command_line("   ").is_empty());
    }

    #[test]
    fn the_launch_follows_the_description() {
        let root = std::env::temp_dir().join(format!("emulator-launch-{}", fastrand::u64(..)));
        std::fs::create_dir_all(root.join("bin")).expect("a temp dir");
        std::fs::write(root.join("bin/handler"), "").expect("a file");
        let app = app(
            &root,
            json!({
                "defaultExecutablePath": "handler",
                "workerDirectory": "bin",
                "workingDirectory": "work",
                "arguments": ["serve --component %COMPONENT%", "%UNSET%"],
                "defaultWorkerPath": "server.js",
                "workerArguments": ["--verbose"]
            }),
        );
        let launch = Launch::new(&app, &environment(&[("COMPONENT", "catalog.wasm")]));
        std::fs::remove_dir_all(&root).expect("cleanup");
        assert_eq!(launch.program, root.join("bin/handler"));
        assert_eq!(launch.working_directory, root.join("work"));
        assert_eq!(
            launch.args(7000, "w"),
            [
                "serve",
                "--component",
                "catalog.wasm",
                "server.js",
                "--verbose"
            ],
            "the worker path as written, for the handler's working directory"
        );
        assert_eq!(
            launch.env,
            [("COMPONENT".to_owned(), "catalog.wasm".to_owned())]
        );
    }

    #[test]
    fn executables_missing_under_the_app_are_commands() {
        let app = app(
            Path::new("/nonexistent-app"),
            json!({"defaultExecutablePath": "python3", "workingDirectory": ""}),
        );
        let launch = Launch::new(&app, &HostEnvironment::default());
        assert!(
            launch.program.ends_with("python3") && launch.program.is_file(),
            "found in PATH: {}",
            launch.program.display()
        );
        assert_eq!(launch.working_directory, PathBuf::from("/nonexistent-app"));
        assert!(launch.args(7000, "w").is_empty());
    }

    #[test]
    fn the_launch_variables_expand_in_the_arguments_and_nothing_else_survives() {
        let app = app(
            Path::new("/app"),
            json!({
                "defaultExecutablePath": "/bin/handler",
                "arguments": ["--port", "%FUNCTIONS_CUSTOMHANDLER_PORT%", "--id=%functions_customhandler_worker_id%"],
            }),
        );
        let launch = Launch::new(&app, &HostEnvironment::default());
        assert_eq!(
            launch.args(7000, "w-1"),
            ["--port", "7000", "--id="],
            "the replacement is case-sensitive; the rest is deleted"
        );
    }
}
