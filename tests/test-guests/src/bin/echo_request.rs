//! Prints what it received to stdout and stderr (as a careless guest might)
//! and answers with it as JSON: the tests read what the guest saw, and check
//! that secrets never reach the log.

#![allow(
    clippy::print_stdout,
    reason = "printing to stdout is what this guest tests"
)]

struct EchoRequest;

impl test_guests::Guest for EchoRequest {
    fn handle(request: test_guests::IncomingRequest, out: test_guests::ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let headers = test_guests::headers(&request);
        for (name, value) in &headers {
            println!("stdout header {name}: {value}");
            eprintln!("stderr header {name}: {value}");
        }
        println!("path {path}");
        let scheme = match request.scheme() {
            Some(test_guests::Scheme::Https) => "https",
            Some(test_guests::Scheme::Http) => "http",
            Some(test_guests::Scheme::Other(other)) => {
                return test_guests::respond(out, 500, "text/plain", other.as_bytes());
            }
            None => "",
        };
        let body = serde_json::json!({
            "path_with_query": path,
            "authority": request.authority(),
            "scheme": scheme,
            "headers": headers,
        });
        test_guests::respond(out, 200, "application/json", body.to_string().as_bytes());
    }
}

test_guests::export!(EchoRequest);

fn main() {}
