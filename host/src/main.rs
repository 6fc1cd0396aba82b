//! The `wasm-handler` binary. See the library for how it is built.

use std::process::ExitCode;

use clap::Parser as _;

// See host/Cargo.toml: allocation is on every request's path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // mimalloc asks for huge pages on its arena, and the kernel collapses the
    // heap into them in the background: the soak run's RSS then swung by
    // +-10 MiB and rose for minutes with no change in what was allocated.
    // The host's heap is a few MiB, too small for them to pay off. Best
    // effort: without the prctl the host runs as before.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    match wasm_handler::Cli::parse().execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
