//! Routers that split traffic between the primary and the canary: the embedded proxy, or a real
//! Traefik or nginx whose configuration serin rewrites at each step.

pub mod embedded;
pub mod matching;
pub mod nginx;
pub mod stats;
pub mod traefik;

pub use embedded::EmbeddedRouter;
pub use matching::MatchRules;
pub use nginx::NginxRouter;
pub use stats::{Totals, Window};
pub use traefik::TraefikRouter;

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

/// The router a local run drives.
pub enum AnyRouter {
    Embedded(EmbeddedRouter),
    Traefik(Box<TraefikRouter>),
    Nginx(Box<NginxRouter>),
}

impl AnyRouter {
    /// Where clients (and the generated load) send requests.
    pub fn url(&self) -> String {
        match self {
            AnyRouter::Embedded(r) => format!("http://{}", r.addr()),
            AnyRouter::Traefik(r) => r.url().to_owned(),
            AnyRouter::Nginx(r) => r.url(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AnyRouter::Embedded(_) => "embedded",
            AnyRouter::Traefik(_) => "traefik",
            AnyRouter::Nginx(_) => "nginx",
        }
    }

    /// Applies the weights; returns once new requests follow them.
    pub async fn set_routes(&mut self, routes: Routes) -> Result<(), RouterError> {
        match self {
            AnyRouter::Embedded(r) => {
                r.set_routes(routes);
                Ok(())
            }
            AnyRouter::Traefik(r) => r.set_routes(routes).await,
            AnyRouter::Nginx(r) => r.set_routes(routes).await,
        }
    }

    /// A/B conditions for the canary (`analysis.match`).
    pub fn set_matches(&mut self, matches: Option<MatchRules>) -> Result<(), RouterError> {
        match self {
            AnyRouter::Embedded(r) => {
                r.set_matches(matches);
                Ok(())
            }
            AnyRouter::Traefik(_) | AnyRouter::Nginx(_) if matches.is_some() => {
                Err(RouterError::Match(
                    "spec.analysis.match: A/B routing needs --router embedded in local mode".into(),
                ))
            }
            AnyRouter::Traefik(_) | AnyRouter::Nginx(_) => Ok(()),
        }
    }

    /// A new canary backend, with fresh accounting.
    pub async fn set_canary(&mut self, url: &str) -> Result<(), RouterError> {
        match self {
            AnyRouter::Embedded(r) => r.set_canary_backend(url),
            AnyRouter::Traefik(r) => {
                let primary = r.backends().0.to_owned();
                r.set_backends(&primary, url).await
            }
            AnyRouter::Nginx(r) => {
                let primary = r.backends().0.to_owned();
                r.set_backends(&primary, url).await
            }
        }
    }

    /// Promotion in local mode: the canary's backend becomes the primary's.
    pub async fn set_primary(&mut self, url: &str) -> Result<(), RouterError> {
        match self {
            AnyRouter::Embedded(r) => r.set_primary_backend(url),
            AnyRouter::Traefik(r) => {
                let canary = r.backends().1.to_owned();
                r.set_backends(url, &canary).await
            }
            AnyRouter::Nginx(r) => {
                let canary = r.backends().1.to_owned();
                r.set_backends(url, &canary).await
            }
        }
    }

    /// Requests answered so far by each backend, mirrored copies excluded.
    pub async fn counts(&self) -> Result<[u64; 2], RouterError> {
        match self {
            AnyRouter::Embedded(r) => {
                let p = r.totals(Backend::Primary);
                let c = r.totals(Backend::Canary);
                Ok([p.requests - p.mirrored, c.requests - c.mirrored])
            }
            AnyRouter::Traefik(r) => r.counts().await,
            AnyRouter::Nginx(r) => Ok(r.counts()),
        }
    }

    /// The canary's traffic over `window` as the router counted it; `None` when the router
    /// does not count (its builtin metrics come from Prometheus).
    pub fn canary_window(&self, window: std::time::Duration) -> Option<Window> {
        match self {
            AnyRouter::Embedded(r) => Some(r.window(Backend::Canary, window)),
            AnyRouter::Traefik(_) => None,
            AnyRouter::Nginx(r) => Some(r.canary_window(window)),
        }
    }

    /// Both backends' cumulative counts, `[primary, canary]`, for the judge (differences of two
    /// readings are exactly the requests in between); `None` when the router does not count.
    pub fn totals(&self) -> Option<[Totals; 2]> {
        match self {
            AnyRouter::Embedded(r) => Some([r.totals(Backend::Primary), r.totals(Backend::Canary)]),
            AnyRouter::Traefik(_) => None,
            AnyRouter::Nginx(r) => Some(r.totals()),
        }
    }

    /// Both backends' traffic over `window`, `[primary, canary]`, for the judge; `None` when the
    /// router does not count.
    pub fn windows(&self, window: std::time::Duration) -> Option<[Window; 2]> {
        match self {
            AnyRouter::Embedded(r) => Some([
                r.window(Backend::Primary, window),
                r.window(Backend::Canary, window),
            ]),
            AnyRouter::Traefik(_) => None,
            AnyRouter::Nginx(r) => Some(r.windows(window)),
        }
    }

    pub async fn shutdown(self) {
        match self {
            AnyRouter::Embedded(r) => r.shutdown(),
            AnyRouter::Traefik(r) => r.shutdown().await,
            AnyRouter::Nginx(r) => r.shutdown().await,
        }
    }
}
