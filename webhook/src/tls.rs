//! The serving certificate: loaded from PEM files and swapped in place when the files change, so
//! new connections get the new certificate and open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: no PEM CERTIFICATE block found; pass a PEM certificate (chain) file")]
    NoCertificate { what: String },
    #[error("{what}: no PEM private key found ({detail}); pass a PKCS#8, PKCS#1 or SEC1 PEM key")]
    NoKey { what: String, detail: String },
    #[error("the certificate and key do not form a usable pair: {0}")]
    Pair(rustls::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Config(rustls::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds a certified key from PEM text; `what` names the source in errors.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { what: what.into() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| TlsError::NoKey {
        what: what.into(),
        detail: err.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Pair)
}

/// A certificate resolver whose key can be replaced at run time.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
    files: Option<(PathBuf, PathBuf)>,
    /// The bytes the current key was built from, to notice changes without trusting mtimes
    /// (Kubernetes updates a mounted Secret by swapping a symlink).
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl ReloadingCert {
    /// A certificate read from PEM files, reloadable with [`ReloadingCert::reload_if_changed`].
    pub fn from_files(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let (cert_pem, key_pem) = read_pair(cert, key)?;
        let what = format!("{} / {}", cert.display(), key.display());
        let current = certified_key(&cert_pem, &key_pem, &what)?;
        Ok(Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(current)),
            files: Some((cert.to_path_buf(), key.to_path_buf())),
            seen: Mutex::new((cert_pem, key_pem)),
        }))
    }

    /// A certificate given as PEM text (e.g. generated at start); never reloaded from disk.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Arc<Self>, TlsError> {
        let current = certified_key(cert_pem.as_bytes(), key_pem.as_bytes(), "generated")?;
        Ok(Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(current)),
            files: None,
            seen: Mutex::new((Vec::new(), Vec::new())),
        }))
    }

    /// Re-reads the files; swaps the certificate when their content changed and forms a valid
    /// pair. Returns whether a new certificate is now served. On error the old one stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let Some((cert, key)) = &self.files else {
            return Ok(false);
        };
        let (cert_pem, key_pem) = read_pair(cert, key)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 == cert_pem && seen.1 == key_pem {
            return Ok(false);
        }
        let what = format!("{} / {}", cert.display(), key.display());
        let fresh = certified_key(&cert_pem, &key_pem, &what)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        *seen = (cert_pem, key_pem);
        Ok(true)
    }

    /// Polls the files every `every` and reloads on change; runs forever (spawn it).
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload_if_changed() {
                Ok(true) => tracing::info!("serving certificate reloaded"),
                Ok(false) => {}
                // A half-written file or a cert/key pair mid-rotation: keep serving the old one.
                Err(err) => {
                    tracing::warn!(error = %err, "certificate reload failed; keeping the current one")
                }
            }
        }
    }

    /// The rustls server configuration serving this certificate (ALPN h2 and http/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(cert)?, read(key)?))
}
