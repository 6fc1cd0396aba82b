//! Returns without ever setting a response.

struct NoResponse;

impl test_guests::Guest for NoResponse {
    fn handle(_request: test_guests::IncomingRequest, _out: test_guests::ResponseOutparam) {}
}

test_guests::export!(NoResponse);

fn main() {}
