//! The `functions-emulator` binary. See the library for how it is built.

fn main() -> std::process::ExitCode {
    functions_emulator::main()
}
