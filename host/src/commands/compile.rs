//! `wasm-handler compile`: precompile a component for the engine `serve`
//! uses, so that start-up and reloads skip compilation.

use std::path::PathBuf;

use crate::artifact::Artifacts;
use crate::engine::{self, CpuFeatures};

/// Options of `wasm-handler compile`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompileCommand {
    /// The component to compile (`.wasm`).
    input: PathBuf,

    /// Where to write the precompiled artifact [default: INPUT with the extension `.cwasm`].
    /// A sidecar `<OUTPUT>.json` records the source's digest and the engine,
    /// so `serve` only uses the artifact for that very component.
    #[arg(short, long)]
    output: Option<PathBuf>,

    /// The CPU features the code may use: `native` for this machine, `baseline`
    /// for any CPU of this architecture (a package deployed elsewhere).
    #[arg(long, value_enum, default_value_t = CpuFeatures::Native)]
    cpu: CpuFeatures,
}

impl CompileCommand {
    /// Compiles and writes the artifact and its sidecar.
    pub(crate) fn execute(self) -> wasmtime::Result<()> {
        let engines = engine::for_compiling(self.cpu)?;
        let output = self
            .output
            .unwrap_or_else(|| self.input.with_extension("cwasm"));
        let (digest, engine) =
            Artifacts::new(&engines, None).compile_to_file(&self.input, &output)?;
        eprintln!(
            "{} ({digest}) -> {} (engine {engine}, {:?} CPU features)",
            self.input.display(),
            output.display(),
            self.cpu
        );
        Ok(())
    }
}
