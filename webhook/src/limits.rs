//! What one client may cost the webhook: connections, time and body size. The defaults suit the
//! webhook's real client, the API server, which sends a few reviews per release, each answered
//! in microseconds, with a timeout of at most 30 s (`timeoutSeconds`).

use std::time::Duration;

/// The server's bounds; `serin webhook` sets each from a flag (docs/webhook.md, "Limits").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    /// Keep it below the process's file descriptor limit.
    pub max_connections: usize,
    /// A client must finish the TLS handshake within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1.1 request's headers must arrive within this of its first byte.
    pub header_timeout: Duration,
    /// A request's body must arrive within this of its headers (answered 408 otherwise).
    pub body_timeout: Duration,
    /// A connection with no request in progress for this long is closed. The API server keeps
    /// connections for 90 s; when the webhook closes first, Go's client notices the close, or
    /// retries a review that met it (its body can be re-sent).
    pub idle_timeout: Duration,
    /// Largest request body (413 beyond it, refused from `Content-Length` before it is read).
    pub max_body_bytes: usize,
    /// Request body bytes held at once by all connections together (503 beyond it): what bounds
    /// the memory of many clients each sending part of a large body. At least `max_body_bytes`.
    pub max_buffered_bytes: usize,
    /// On shutdown, how long open connections get to finish their requests.
    pub drain_timeout: Duration,
}

/// The API server's limit for an object is 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 128,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_body_bytes: MAX_BODY_BYTES,
            max_buffered_bytes: 32 * 1024 * 1024,
            drain_timeout: Duration::from_secs(20),
        }
    }
}
