//! The local shell around the engine: each tick it asks the decider, answers its requests
//! (metrics, webhooks) concurrently, carries out its actions on the router, reports progress,
//! and waits `interval` on the real clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serin_analysis::{Action, Answers, Conclusion, EventType, Input, Observed, Readiness, Tick};
use serin_api::{CanarySpec, CanaryStatus, MetricTemplate, Phase, Strategy};
use serin_providers::prometheus::Prometheus;

use crate::checks::{ANSWER_TIMEOUT, Checker};
use crate::progress::Reporter;
use crate::router::{AnyRouter, MatchRules, RouterError, Routes};

/// Decides one tick (`serin_analysis::tick`; tests may drive the shell with a scripted one).
pub type Decider = fn(&Input<'_>, &Answers) -> Tick;

/// One release to analyse.
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub spec: CanarySpec,
    pub templates: Vec<MetricTemplate>,
    /// The canary backend (`http://127.0.0.1:PORT`).
    pub canary_url: String,
    /// A label for the revision under analysis (e.g. the demo's `v2`).
    pub revision: String,
    /// A label for the version the primary runs.
    pub stable_revision: String,
}

/// How a release ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub promoted: bool,
    /// The last decision's explanation.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("interrupted")]
    Interrupted,
    #[error("the analysis made no decision within {0} ticks")]
    Stalled(u32),
}

/// A router with its checks, driving releases one after another.
pub struct Session {
    pub router: AnyRouter,
    pub prometheus: Option<Prometheus>,
    pub decider: Decider,
    /// Safety stop for runs whose gates never open.
    pub max_ticks: u32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Session {
    /// Analyses `release` to its end; `stop` resolving (Ctrl-C) ends it with `Interrupted`,
    /// traffic back at the primary.
    pub async fn run(
        &mut self,
        release: &Release,
        reporter: &mut Reporter,
        stop: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<Finished, SessionError> {
        let name = format!("{}/{}", release.namespace, release.name);
        self.router.set_routes(Routes::all_primary()).await?;
        self.router.set_canary(&release.canary_url).await?;
        let matches = match release.spec.strategy() {
            Strategy::AbTesting => Some(MatchRules::compile(
                release
                    .spec
                    .analysis()
                    .and_then(|a| a.match_.as_deref())
                    .unwrap_or(&[]),
                "spec.analysis.match",
            )?),
            _ => None,
        };
        self.router.set_matches(matches)?;
        reporter.start(
            &name,
            &release.revision,
            self.router.kind(),
            &self.router.url(),
        );
        let checker = Checker {
            name: release.name.clone(),
            namespace: release.namespace.clone(),
            spec: release.spec.clone(),
            templates: release.templates.clone(),
            prometheus: self.prometheus.clone(),
            judging: Default::default(),
        };
        checker.judging.start(&self.router);
        // The stable version is what the primary runs; the release is a new revision of it.
        let mut status = CanaryStatus {
            phase: Some(Phase::Initialized),
            last_applied_spec: Some(release.stable_revision.clone()),
            last_promoted_spec: Some(release.stable_revision.clone()),
            ..Default::default()
        };
        let mut observed = Observed {
            now_ms: now_ms(),
            revision: release.revision.clone(),
            primary: Readiness::Ready,
            canary: Readiness::Ready,
            routes: None,
            retry: None,
            // Local mode takes no commands (serin promote|abort act on the cluster's Canaries).
            ..Default::default()
        };
        let mut weight = 0u32;
        let mut promoted = false;
        let mut rollback_reason = None;
        let mut step_start = self.router.counts().await?;
        for _ in 0..self.max_ticks {
            observed.now_ms = now_ms();
            observed.routes = Some(serin_analysis::Routes {
                primary: 100 - weight,
                canary: weight,
                mirror: false,
            });
            // The judges' evidence lives in the status, as in the controller.
            let judges = serin_analysis::judge::record::comparator(
                &release.spec,
                &status,
                &release.revision,
            );
            let input = Input {
                namespace: &release.namespace,
                name: &release.name,
                spec: &release.spec,
                status: &status,
                observed: &observed,
                comparator: Some(&judges),
            };
            let mut answers = Answers::default();
            let mut output = loop {
                match (self.decider)(&input, &answers) {
                    Tick::Done(o) => break o,
                    Tick::Need(requests) => {
                        let router = &self.router;
                        let calls = requests.iter().map(|r| {
                            tokio::time::timeout(
                                ANSWER_TIMEOUT,
                                checker.answer(router, r, &status, &release.revision),
                            )
                        });
                        let results = tokio::select! {
                            r = join_all(calls) => r,
                            _ = &mut *stop => return self.interrupted().await,
                        };
                        for (r, a) in requests.iter().zip(results) {
                            let a = a.unwrap_or_else(|_| timeout_answer(r));
                            answers.insert(r, a);
                        }
                    }
                }
            };
            serin_analysis::judge::record::save(&judges, &release.revision, &mut output.status);
            let mut concluded = None;
            for action in &output.actions {
                match action {
                    Action::SetRoutes { routes, .. } => {
                        let now = self.router.counts().await?;
                        // After a promotion both backends serve the new version: not a step.
                        if !promoted {
                            reporter.step(
                                &name,
                                weight,
                                now[0] - step_start[0].min(now[0]),
                                now[1] - step_start[1].min(now[1]),
                            );
                        }
                        self.router
                            .set_routes(Routes {
                                primary: routes.primary,
                                canary: routes.canary,
                                mirror: routes.mirror,
                            })
                            .await?;
                        step_start = self.router.counts().await?;
                        weight = routes.canary;
                    }
                    Action::Promote { .. } => {
                        let now = self.router.counts().await?;
                        reporter.step(
                            &name,
                            weight,
                            now[0] - step_start[0].min(now[0]),
                            now[1] - step_start[1].min(now[1]),
                        );
                        // Local mode's promotion: the canary's backend now serves as the stable
                        // one, at the primary's share.
                        self.router.set_primary(&release.canary_url).await?;
                        promoted = true;
                        step_start = self.router.counts().await?;
                    }
                    Action::RecordEvent {
                        type_,
                        reason,
                        message,
                    } => {
                        let code = format!("{:?}", reason.code);
                        if code.starts_with("Rollback") {
                            rollback_reason = Some(message.clone());
                        }
                        reporter.event(&name, *type_ == EventType::Warning, &code, message)
                    }
                    // Local mode has no alert providers; alerts repeat the events shown.
                    Action::SendAlert { .. } => {}
                    Action::CallWebhook {
                        kind, phase, hook, ..
                    } => {
                        let request = serin_analysis::Request::Webhook {
                            kind: *kind,
                            phase: *phase,
                            hook: hook.clone(),
                        };
                        if let serin_analysis::Answer::Webhook { ok: false, message } = checker
                            .answer(&self.router, &request, &output.status, &release.revision)
                            .await
                        {
                            reporter.event(&name, true, "WebhookFailed", &message);
                        }
                    }
                    Action::Concluded { result } => concluded = Some(*result),
                    Action::Initialize { .. }
                    | Action::ScaleUpCanary { .. }
                    | Action::ScaleDownCanary { .. } => {}
                }
            }
            status = output.status;
            reporter.tick(&name, &release.spec, &status);
            if let Some(result) = concluded {
                let promoted = matches!(result, Conclusion::Promoted | Conclusion::Skipped);
                // A rollback is explained by its decision, not by the scale-down that follows.
                let message = match (promoted, rollback_reason.take()) {
                    (false, Some(reason)) => reason,
                    _ => status.message.clone().unwrap_or_default(),
                };
                reporter.done(&name, promoted, &message);
                return Ok(Finished { promoted, message });
            }
            let wait = Duration::from_millis(output.requeue_after_ms.max(10));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut *stop => return self.interrupted().await,
            }
        }
        Err(SessionError::Stalled(self.max_ticks))
    }

    async fn interrupted(&mut self) -> Result<Finished, SessionError> {
        let _ = self.router.set_routes(Routes::all_primary()).await;
        Err(SessionError::Interrupted)
    }
}

fn timeout_answer(r: &serin_analysis::Request) -> serin_analysis::Answer {
    let message = format!("no answer within {}s", ANSWER_TIMEOUT.as_secs());
    match r {
        serin_analysis::Request::Webhook { .. } => {
            serin_analysis::Answer::Webhook { ok: false, message }
        }
        serin_analysis::Request::Metric { .. } => {
            serin_analysis::Answer::Metric(serin_analysis::Measurement::Error { message })
        }
    }
}
