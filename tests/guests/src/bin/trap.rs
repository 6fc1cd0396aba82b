//! Panics (a trap) before it sends a response.

struct Trap;

impl test_guests::Guest for Trap {
    fn handle(_request: test_guests::IncomingRequest, _out: test_guests::ResponseOutparam) {
        panic!("the business logic hit a bug");
    }
}

test_guests::export!(Trap);

fn main() {}
