//! The checks: what counts as the expected answer to a request.

use test_harness::http::Response;

/// What one request came to.
pub(crate) enum Outcome {
    /// The expected answer, labelled by status (or `cut body`).
    Expected(String),
    /// An answer, but not the expected one: its label and what was wrong.
    Unexpected(String, String),
    /// No answer where one was due.
    Lost(String),
}

/// Judges an answer with `check`; no answer is a lost request.
pub(crate) fn judge(
    result: std::io::Result<Response>,
    check: impl FnOnce(&Response) -> Result<(), String>,
) -> Outcome {
    match result {
        Err(error) => Outcome::Lost(error.to_string()),
        Ok(response) => match check(&response) {
            Ok(()) => Outcome::Expected(response.status.to_string()),
            Err(why) => Outcome::Unexpected(response.status.to_string(), why),
        },
    }
}

/// A problem+json with `status`, our correlation id (when the host could
/// read the head) and, when given, this `detail`.
pub(crate) fn problem(
    status: u16,
    correlation_id: Option<&str>,
    detail: Option<&str>,
) -> impl FnOnce(&Response) -> Result<(), String> {
    move |response| {
        let problem = response.problem(status, correlation_id)?;
        match detail {
            Some(detail) if problem["detail"] != detail => Err(format!(
                "detail {} instead of {detail:?}",
                problem["detail"]
            )),
            _ => Ok(()),
        }
    }
}

/// A 200 whose body is exactly `body`, with our correlation id.
pub(crate) fn plain_ok<'a>(
    body: &'a [u8],
    correlation_id: &'a str,
) -> impl FnOnce(&Response) -> Result<(), String> + 'a {
    move |response| {
        expect_status(response, 200)?;
        expect_correlation_id(response, correlation_id)?;
        if response.body != body {
            return Err(format!(
                "body {:?} instead of {:?}",
                String::from_utf8_lossy(&response.body),
                String::from_utf8_lossy(body)
            ));
        }
        Ok(())
    }
}

pub(crate) fn expect_status(response: &Response, status: u16) -> Result<(), String> {
    if response.status == status {
        Ok(())
    } else {
        let body = &response.body[..response.body.len().min(300)];
        Err(format!(
            "status {} instead of {status}: {:?}",
            response.status,
            String::from_utf8_lossy(body)
        ))
    }
}

pub(crate) fn expect_correlation_id(
    response: &Response,
    correlation_id: &str,
) -> Result<(), String> {
    match response.header("x-correlation-id") {
        Some(id) if id == correlation_id => Ok(()),
        other => Err(format!(
            "x-correlation-id {other:?} instead of {correlation_id:?}"
        )),
    }
}

pub(crate) fn status_label(status: Option<u16>) -> String {
    status.map_or_else(|| "no status".to_owned(), |status| status.to_string())
}

/// A 200 with the item's JSON, its ETag and our correlation id.
pub(crate) fn catalog_item(
    response: &Response,
    item: &str,
    etag: &str,
    id: &str,
) -> Result<(), String> {
    expect_status(response, 200)?;
    expect_correlation_id(response, id)?;
    if response.header("etag") != Some(etag) {
        return Err(format!(
            "ETag {:?} instead of {etag}",
            response.header("etag")
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("item {item} is not JSON: {e}"))?;
    if body["item_id"] != item || body["correlation_id"] != id {
        return Err(format!("item {item} answered with {body}"));
    }
    Ok(())
}
