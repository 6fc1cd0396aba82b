//! Answers `one` to everything: a guest whose versions the swap tests tell apart.

struct VersionOne;

impl test_guests::Guest for VersionOne {
    fn handle(_request: test_guests::IncomingRequest, out: test_guests::ResponseOutparam) {
        // How many requests this instance has served, for the swap tests with reuse on.
        let served = [(
            "x-instance-requests",
            test_guests::count_request().to_string(),
        )];
        test_guests::respond_with_headers(out, 200, "text/plain", &served, b"one");
    }
}

test_guests::export!(VersionOne);

fn main() {}
