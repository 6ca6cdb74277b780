//! Answers are read up to a limit: anyone who can create a MetricTemplate, a Canary webhook or
//! an AlertProvider chooses the address the controller reads from, and a 1 GiB answer once took
//! the cluster-wide controller to 3.3 GB. Past the limit the read stops and the call is an error
//! that names the limit and the flag that sets it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The default limit: far above a metric answer (a few hundred bytes for one number) or a
/// webhook's reply, far below the controller's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 << 20;

static MAX_RESPONSE_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_RESPONSE_BYTES);

/// Sets the limit for every answer this process reads (`serin controller --max-response-bytes`).
pub fn set_max_response_bytes(limit: usize) {
    MAX_RESPONSE_BYTES.store(limit.max(1), Ordering::Relaxed);
}

pub fn max_response_bytes() -> usize {
    MAX_RESPONSE_BYTES.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "the answer is larger than {limit} bytes (--max-response-bytes); it was not read: make \
         the query return one number, or raise the limit"
    )]
    TooLarge { limit: usize },
    #[error("reading the answer: {0}")]
    Read(String),
}

/// The body as text (invalid UTF-8 replaced), read chunk by chunk up to the limit.
pub async fn read_text(mut resp: reqwest::Response) -> Result<String, BodyError> {
    let limit = max_response_bytes();
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Read(e.to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
