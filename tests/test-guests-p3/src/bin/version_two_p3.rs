//! Answers `two` to everything: the 0.3 guest whose versions the swap tests tell apart.

struct VersionTwoP3;

impl test_guests_p3::Guest for VersionTwoP3 {
    async fn handle(
        _request: test_guests_p3::Request,
    ) -> Result<test_guests_p3::Response, test_guests_p3::ErrorCode> {
        test_guests_p3::answer_version("two")
    }
}

test_guests_p3::export!(VersionTwoP3);

fn main() {}
