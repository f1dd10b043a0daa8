//! Reading a request body within its limits: the declared length first (a body declared too
//! large is refused before a byte of it is read), then at most `max` bytes, all of them within
//! the body deadline. The signed API and the console's forms read bodies this one way and map the
//! refusal to their own answer (an `SCM` error, an HTML page).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyRefusal {
    /// Declared, or found, larger than allowed.
    TooLarge,
    /// Not all there before the deadline.
    Timeout,
}

/// Reads `body` (with `headers`, for its declared length): at most `max` bytes within `deadline`.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, BodyRefusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyRefusal::TooLarge);
    }
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(BodyRefusal::TooLarge),
        Err(_) => Err(BodyRefusal::Timeout),
    }
}
