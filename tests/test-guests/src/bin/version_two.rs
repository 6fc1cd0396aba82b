//! Answers `two` to everything: the next version of `version_one`.

struct VersionTwo;

impl test_guests::Guest for VersionTwo {
    fn handle(_request: test_guests::IncomingRequest, out: test_guests::ResponseOutparam) {
        test_guests::respond(out, 200, "text/plain", b"two");
    }
}

test_guests::export!(VersionTwo);

fn main() {}
