//! A valid component that exports only `wasi:cli/run`, not
//! `wasi:http/incoming-handler`: the host must refuse to serve it.

fn main() {
    // Referencing the library keeps its bindings in the build, as a real guest's would be.
    let _ = std::hint::black_box(test_guests::respond as fn(_, _, _, _));
}
