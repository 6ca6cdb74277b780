//! Leader election with a `coordination.k8s.io/v1` Lease, client-go's algorithm in small: take the
//! Lease when it is free or expired by replacing it at the resourceVersion that was read (a 409
//! means another replica won), renew it every `renew_every`, and stop leading as soon as a renewal
//! fails past the lease duration — so two replicas never act at once. kube 5 has none built in.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};

/// Settings of one election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub duration: Duration,
    /// How often the leader renews and followers retry.
    pub renew_every: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn expired(spec: &LeaseSpec, duration: Duration) -> bool {
    let Some(renewed) = spec.renew_time.as_ref() else {
        return true;
    };
    let secs = spec
        .lease_duration_seconds
        .map(|s| s as u64)
        .unwrap_or(duration.as_secs());
    let age = k8s_openapi::jiff::Timestamp::now().duration_since(renewed.0);
    age.as_secs() >= secs as i64
}

/// One attempt to take or keep the Lease; `Ok(true)` when this replica holds it now.
pub async fn try_acquire_or_renew(client: &Client, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let mine = |transitions: i32, acquired: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.duration.as_secs() as i32),
        acquire_time: acquired.or_else(|| Some(now())),
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                namespace: Some(cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(mine(0, None)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    let ours = holder == cfg.identity;
    if !ours && !holder.is_empty() && !expired(&spec, cfg.duration) {
        return Ok(false);
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
    lease.spec = Some(mine(
        transitions,
        if ours {
            spec.acquire_time.clone()
        } else {
            None
        },
    ));
    // The read resourceVersion is the precondition: a concurrent taker makes this a 409.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this replica leads, then runs `lead` until it returns or leadership is lost
/// (a renewal not achieved within the lease duration). Returns when leadership ends.
pub async fn run_while_leading<F>(client: Client, cfg: LeaseConfig, lead: F)
where
    F: std::future::Future<Output = ()>,
{
    loop {
        match try_acquire_or_renew(&client, &cfg).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election: lease not readable"),
        }
        tokio::time::sleep(cfg.renew_every).await;
    }
    tracing::info!(identity = %cfg.identity, lease = %cfg.name, "leader election: leading");
    let renew = async {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(cfg.renew_every).await;
            match try_acquire_or_renew(&client, &cfg).await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    return tracing::error!("leader election: lease taken by another replica");
                }
                Err(e) => tracing::warn!(error = %e, "leader election: renewal failed"),
            }
            if last_renewed.elapsed() >= cfg.duration {
                return tracing::error!("leader election: lease not renewed within its duration");
            }
        }
    };
    tokio::select! {
        _ = lead => {}
        _ = renew => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_renew_time_and_duration() {
        let fresh = LeaseSpec {
            renew_time: Some(now()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!expired(&fresh, Duration::from_secs(15)));
        let old = LeaseSpec {
            renew_time: Some(MicroTime(
                k8s_openapi::jiff::Timestamp::now()
                    - k8s_openapi::jiff::SignedDuration::from_secs(30),
            )),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(expired(&old, Duration::from_secs(15)));
        assert!(expired(&LeaseSpec::default(), Duration::from_secs(15)));
    }
}
