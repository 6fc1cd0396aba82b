//! The command line: one module per subcommand.

mod compile;
mod serve;

pub(crate) use compile::CompileCommand;
pub(crate) use serve::ServeCommand;

/// `wasm-handler`: serves a wasi:http component as an Azure Functions custom handler.
#[derive(Debug, clap::Parser)]
#[command(name = "wasm-handler", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve wasi:http components over HTTP, as a Functions custom handler.
    // Boxed: the serve options dwarf the other subcommands.
    Serve(Box<ServeCommand>),
    /// Precompile a component for this host (`.wasm` -> `.cwasm`).
    Compile(CompileCommand),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn execute(self) -> wasmtime::Result<()> {
        match self.command {
            Command::Serve(serve) => serve.execute(),
            Command::Compile(compile) => compile.execute(),
        }
    }
}
