//! Routers that split traffic between the primary and the canary: the embedded proxy, or a real
//! Traefik or nginx whose configuration serin rewrites at each step.

pub mod embedded;
pub mod matching;
pub mod stats;

pub use embedded::EmbeddedRouter;
pub use matching::MatchRules;
pub use stats::{Totals, Window};

/// Traffic weights, in percent (primary + canary = 100), and whether the primary's requests
/// are mirrored to the canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Routes {
    pub primary: u32,
    pub canary: u32,
    pub mirror: bool,
}

impl Routes {
    pub fn all_primary() -> Self {
        Self {
            primary: 100,
            canary: 0,
            mirror: false,
        }
    }

    /// The canary at `weight` percent, the rest at the primary.
    pub fn canary_at(weight: u32) -> Self {
        let canary = weight.min(100);
        Self {
            primary: 100 - canary,
            canary,
            mirror: false,
        }
    }
}

/// One of the two backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Primary,
    Canary,
}

impl Backend {
    pub fn index(self) -> usize {
        match self {
            Backend::Primary => 0,
            Backend::Canary => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Primary => "primary",
            Backend::Canary => "canary",
        }
    }
}

/// Why a router cannot start or be reconfigured.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot listen on {0}: {1} (pick a free address with --listen)")]
    Listen(String, #[source] std::io::Error),
    #[error("{which} backend {url:?}: {reason}")]
    Backend {
        which: String,
        url: String,
        reason: String,
    },
    #[error("match condition {0}")]
    Match(String),
    #[error("{0}")]
    Process(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
