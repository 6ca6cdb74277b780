//! Certificate rotation: new files are picked up by the polling watcher, new connections get the
//! new certificate, open connections keep working, and a broken file leaves the old one served.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serin_webhook::MemoryCanaryIndex;

async fn healthz(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client
        .get(format!("{url}/healthz"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections_only() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    let old_client = server.ca.client();
    assert_eq!(healthz(&old_client, &server.url).await.unwrap(), "ok\n");

    let new_ca = common::Ca::new("rotated CA");
    let new_client = new_ca.client();
    assert!(
        healthz(&new_client, &server.url).await.is_err(),
        "the new CA must not verify the old certificate"
    );

    let (cert, key) = new_ca.issue();
    write_atomically(&server.key_file, &key);
    write_atomically(&server.cert_file, &cert);
    tokio::spawn(server.cert.clone().watch(Duration::from_millis(20)));

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if healthz(&new_client, &server.url).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The connection opened before the rotation still works: a new one would be refused, since
    // the old CA does not verify the new certificate.
    assert_eq!(healthz(&old_client, &server.url).await.unwrap(), "ok\n");
    let fresh_old = server.ca.client();
    assert!(healthz(&fresh_old, &server.url).await.is_err());
}

#[tokio::test]
async fn a_broken_certificate_file_keeps_the_current_certificate() {
    let server = common::start(Arc::new(MemoryCanaryIndex::new())).await;
    std::fs::write(&server.cert_file, "-----BEGIN CERTIFICATE-----\ngarbage").unwrap();
    let err = server.cert.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("tls.crt"), "{err}");
    // A key that does not belong to the certificate is refused too.
    let (cert, _) = server.ca.issue();
    let (_, other_key) = server.ca.issue();
    std::fs::write(&server.cert_file, cert).unwrap();
    std::fs::write(&server.key_file, other_key).unwrap();
    assert!(server.cert.reload_if_changed().is_err());
    // Still served, to new connections too.
    assert_eq!(
        healthz(&server.ca.client(), &server.url).await.unwrap(),
        "ok\n"
    );
    // Unchanged files are not reloaded.
    let (cert, key) = server.ca.issue();
    std::fs::write(&server.cert_file, &cert).unwrap();
    std::fs::write(&server.key_file, &key).unwrap();
    assert!(server.cert.reload_if_changed().unwrap());
    assert!(!server.cert.reload_if_changed().unwrap());
}
