//! Answers `one` to everything: a guest whose versions the swap tests tell apart.

struct VersionOne;

impl test_guests::Guest for VersionOne {
    fn handle(_request: test_guests::IncomingRequest, out: test_guests::ResponseOutparam) {
        test_guests::respond(out, 200, "text/plain", b"one");
    }
}

test_guests::export!(VersionOne);

fn main() {}
