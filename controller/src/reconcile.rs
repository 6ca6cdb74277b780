//! One reconcile of a Canary: observe (from the store), run the engine's tick (answering its
//! requests), carry out its actions, write the status, requeue after the interval.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use serin_analysis::{
    Action, Answers, Conclusion, EventType, Input, Observed, Readiness, Routes, Severity, Tick,
};
use serin_api::hold::Kind;
use serin_api::labels::{CANARY_LABEL, CANARY_SUFFIX, RETRY_ANNOTATION, STABLE_HASH_ANNOTATION};
use serin_api::validate::{Severity as DiagSeverity, validate_document};
use serin_api::{Canary, CanaryStatus, Phase};

use crate::router::Router;
use crate::target::{self, Workload};
use crate::telemetry::{CanaryLabels, MetricLabels, ResultLabels, WeightLabels};
use crate::{Context, ERROR_REQUEUE, Error, checks, services, workload};

pub async fn reconcile(cached: Arc<Canary>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let ns = cached
        .namespace()
        .ok_or_else(|| Error::NoNamespace(cached.name_any()))?;
    let key = format!("{ns}/{}", cached.name_any());
    let memory = ctx.memory(&key);
    let Some(canary) = current_canary(&ctx, cached, &key, &memory).await? else {
        return Ok(Requeue::await_change());
    };
    let interval = canary.spec.interval();
    let Some(kind) = supported_kind(&ctx, &canary).await else {
        return Ok(Requeue::requeue(interval));
    };
    let router = match drivable(&ctx, &canary) {
        Ok(r) => r,
        Err(blocked) => {
            hold_blocked(&ctx, &canary, kind, &blocked).await?;
            return Ok(Requeue::requeue(interval));
        }
    };
    let Some((target, label)) = resolve_target(&ctx, &canary, kind).await? else {
        return Ok(Requeue::requeue(interval));
    };
    let revision = target.template_hash();
    hold_without_webhook(&ctx, &target).await?;

    let wanted = Wanted {
        generation: canary.metadata.generation,
        revision,
        retry: canary.annotations().get(RETRY_ANNOTATION).cloned(),
        commands: crate::commands::read(&canary),
    };
    if let Some(wait) = not_due(&ctx, &key, &memory, &canary, &wanted, interval) {
        return Ok(Requeue::requeue(wait));
    }

    let status = canary.status.clone().unwrap_or_default();
    let scope = Scope {
        ctx: &ctx,
        canary: &canary,
        target: &target,
        label: &label,
        router,
        status: &status,
        revision: &wanted.revision,
    };
    let observed = scope.observe(memory.routes, &wanted).await?;
    let mut output = scope.run_engine(&observed, &wanted).await;
    let routes = match scope
        .carry_out_all(&output.actions, observed.routes)
        .await?
    {
        Ok(routes) => routes,
        Err(blocked) => {
            // The router's object cannot be written (its CRD is missing, say): the target is
            // adopted, so it stays held; nothing of this tick is recorded and it is redone.
            hold_blocked(&ctx, &canary, kind, &blocked).await?;
            ctx.forget(&key);
            return Ok(Requeue::requeue(interval));
        }
    };
    accepted(&mut output.status, None);
    let written = write_status(&ctx, &canary, &status, &output.status).await?;
    let labels = CanaryLabels {
        name: canary.name_any(),
        namespace: ns,
    };
    record_telemetry(&ctx, &canary, &output.status, &labels, &output.actions);
    ctx.telemetry
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let next = Duration::from_millis(output.requeue_after_ms.max(100));
    ctx.remember(
        &key,
        wanted.remembered(next, written.or(memory.written_version), routes),
    );
    Ok(Requeue::requeue(next))
}

/// What the user asked for, as this tick sees it: a change of any of it ticks at once.
struct Wanted {
    generation: Option<i64>,
    revision: String,
    retry: Option<String>,
    commands: serin_analysis::Commands,
}

impl Wanted {
    fn remembered(
        &self,
        next: Duration,
        written_version: Option<String>,
        routes: Option<Routes>,
    ) -> crate::context::TickMemory {
        crate::context::TickMemory {
            due: Some(std::time::Instant::now() + next),
            written_version,
            generation: self.generation,
            revision: self.revision.clone(),
            retry: self.retry.clone(),
            commands: self.commands.clone(),
            routes,
        }
    }
}

/// The Canary to decide on. The watch cache may not have our last status write yet: deciding
/// on an older status would replay a decision (and overwrite its result), so the Canary is read
/// when the cache lags. `None` when it is gone.
#[tracing::instrument(skip_all, fields(canary = %key))]
async fn current_canary(
    ctx: &Context,
    cached: Arc<Canary>,
    key: &str,
    memory: &crate::context::TickMemory,
) -> Result<Option<Arc<Canary>>, Error> {
    match &memory.written_version {
        Some(v) if cached.resource_version().as_ref() != Some(v) => {
            let ns = cached.namespace().unwrap_or_default();
            let canaries: Api<Canary> = Api::namespaced(ctx.client.clone(), &ns);
            let fresh = canaries.get_opt(&cached.name_any()).await?;
            if fresh.is_none() {
                ctx.forget(key);
            }
            Ok(fresh.map(Arc::new))
        }
        _ => Ok(Some(cached)),
    }
}

/// The target's kind, when serin holds that kind (a Warning event otherwise).
async fn supported_kind(ctx: &Context, canary: &Canary) -> Option<Kind> {
    let name = canary
        .spec
        .target_ref
        .kind
        .as_deref()
        .unwrap_or("Deployment");
    let kind = Kind::from_name(name);
    if kind.is_none() {
        let message = format!(
            "targetRef.kind {name} is not supported yet; use a Deployment, DaemonSet or StatefulSet"
        );
        publish(
            ctx,
            canary,
            KubeEventType::Warning,
            "UnsupportedTarget",
            &message,
        )
        .await;
    }
    kind
}

/// The label (name, value) that tells a workload's pods apart, e.g. `app=web`.
type SelectorLabel = (String, String);

/// The target workload and its selector label (a Warning event when either is missing).
/// Before adoption the target carries no label and is not in the store: one GET.
#[tracing::instrument(skip_all, fields(target = %canary.spec.target_ref.name))]
async fn resolve_target(
    ctx: &Context,
    canary: &Canary,
    kind: Kind,
) -> Result<Option<(Workload, SelectorLabel)>, Error> {
    let ns = canary.namespace().unwrap_or_default();
    let name = &canary.spec.target_ref.name;
    let target = match ctx.cached_workload(kind, &ns, name) {
        Some(w) => Some(w),
        None => target::get(&ctx.client, kind, &ns, name).await?,
    };
    let Some(target) = target else {
        let message = format!(
            "{} {ns}/{name} not found: create it or fix spec.targetRef.name",
            kind.lower()
        );
        publish(
            ctx,
            canary,
            KubeEventType::Warning,
            "TargetNotFound",
            &message,
        )
        .await;
        return Ok(None);
    };
    match workload::selector_label(&target.match_labels(), name, &ctx.config.selector_labels) {
        Ok(label) => Ok(Some((target, label))),
        Err(message) => {
            let message = format!("{} {ns}/{name}: {message}", kind.lower());
            publish(
                ctx,
                canary,
                KubeEventType::Warning,
                "NoSelectorLabel",
                &message,
            )
            .await;
            Ok(None)
        }
    }
}

/// How long to wait when the analysis is not due: watch events (our own writes included) wake
/// the reconciler at any time, but it advances once per interval unless what the user wants
/// changed. After a restart the status's `lastTickTime` stands in for the lost memory.
fn not_due(
    ctx: &Context,
    key: &str,
    memory: &crate::context::TickMemory,
    canary: &Canary,
    wanted: &Wanted,
    interval: Duration,
) -> Option<Duration> {
    if let Some(due) = memory.due {
        let now = std::time::Instant::now();
        let unchanged = memory.generation == wanted.generation
            && memory.revision == wanted.revision
            && memory.retry == wanted.retry
            && memory.commands == wanted.commands;
        return (now < due && unchanged).then(|| due - now);
    }
    let wait = resume_wait(
        canary,
        &wanted.revision,
        &wanted.retry,
        &wanted.commands,
        interval,
    )?;
    let mut remembered = wanted.remembered(wait, memory.written_version.clone(), None);
    remembered.routes = memory.routes;
    ctx.remember(key, remembered);
    Some(wait)
}

/// What one tick works on once the Canary's target is known.
struct Scope<'a> {
    ctx: &'a Context,
    canary: &'a Canary,
    target: &'a Workload,
    label: &'a SelectorLabel,
    router: Router,
    status: &'a CanaryStatus,
    revision: &'a str,
}

impl Scope<'_> {
    /// What the engine observes: revision, readiness of both sides, the router's weights (read
    /// back from its object only on the first tick after a start).
    #[tracing::instrument(skip_all)]
    async fn observe(&self, known: Option<Routes>, wanted: &Wanted) -> Result<Observed, Error> {
        let (kind, ns) = (
            self.target.kind(),
            self.canary.namespace().unwrap_or_default(),
        );
        let canary_name = format!("{}{CANARY_SUFFIX}", self.target.name());
        let spec = &self.canary.spec;
        let canary = match self.ctx.cached_workload(kind, &ns, &canary_name) {
            Some(w) if w.is_scaled_up() => w.readiness(spec.canary_ready_threshold()),
            _ => Readiness::NotReady {
                reason: format!("{} {canary_name} is not scaled up yet", kind.lower()),
            },
        };
        let routes = match (self.status.phase, known) {
            (None, _) => None,
            (Some(_), Some(known)) => Some(known),
            (Some(_), None) => {
                self.router
                    .get_routes(&self.ctx.client, self.canary)
                    .await?
            }
        };
        Ok(Observed {
            now_ms: now_ms(),
            revision: self.revision.to_string(),
            primary: self.target.readiness(spec.primary_ready_threshold()),
            canary,
            routes,
            retry: wanted.retry.clone(),
            commands: wanted.commands.clone(),
        })
    }

    /// Runs the engine's tick, answering its requests (webhooks, metric queries) until it is
    /// done; the judges' evidence goes from the status into the engine and back.
    #[tracing::instrument(skip_all)]
    async fn run_engine(&self, observed: &Observed, wanted: &Wanted) -> serin_analysis::Output {
        let (ns, name) = (
            self.canary.namespace().unwrap_or_default(),
            self.canary.name_any(),
        );
        let retry = wanted.retry.as_deref();
        let judges = checks::judging::comparator(self.canary, self.status, self.revision, retry);
        let mut answers = Answers::default();
        let mut output = loop {
            // The input lives only for the (synchronous) tick: nothing of it crosses an await.
            let step = serin_analysis::tick(
                &Input {
                    namespace: &ns,
                    name: &name,
                    spec: &self.canary.spec,
                    status: self.status,
                    observed,
                    comparator: Some(&judges),
                },
                &answers,
            );
            match step {
                Tick::Done(output) => break output,
                Tick::Need(requests) => {
                    let ask =
                        |r| checks::answer(self.ctx, self.canary, self.status, self.revision, r);
                    let results = futures::future::join_all(requests.iter().map(ask)).await;
                    for (r, a) in requests.iter().zip(results) {
                        answers.insert(r, a);
                    }
                }
            }
        };
        checks::judging::save(&judges, self.revision, retry, &mut output.status);
        output
    }

    /// Carries out the engine's actions in order; the routes the router's object now holds, or
    /// why the router cannot be driven.
    #[tracing::instrument(skip_all)]
    async fn carry_out_all(
        &self,
        actions: &[Action],
        mut routes: Option<Routes>,
    ) -> Result<Result<Option<Routes>, Blocked>, Error> {
        for action in actions {
            match self.carry_out(action).await {
                Ok(Some(written)) => routes = Some(written),
                Ok(None) => {}
                Err(Error::Router { provider, message }) => {
                    return Ok(Err(Blocked {
                        reason: "RouterUnavailable",
                        message: format!("provider {provider}: {message}"),
                    }));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Ok(routes))
    }

    /// One action of the engine, carried out.
    async fn carry_out(&self, action: &Action) -> Result<Option<Routes>, Error> {
        let Scope {
            ctx,
            canary,
            target,
            label,
            router,
            status,
            revision,
        } = *self;
        let ns = canary.namespace().unwrap_or_default();
        let kind = target.kind();
        let target_name = target.name();
        let canary_name = format!("{target_name}{CANARY_SUFFIX}");
        match action {
            Action::Initialize { stable_revision } => {
                let patch = json!({"metadata": {
                    "labels": {CANARY_LABEL: canary.name_any()},
                    "annotations": {STABLE_HASH_ANNOTATION: stable_revision},
                }});
                target::patch(&ctx.client, kind, &ns, &target_name, &patch).await?;
                let svcs: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
                services::ensure(&svcs, canary, &target.match_labels(), label).await?;
                let initial = Routes {
                    primary: 100,
                    canary: 0,
                    mirror: false,
                };
                router.set_routes(&ctx.client, canary, initial).await?;
                return Ok(Some(initial));
            }
            Action::SetRoutes { routes, .. } => {
                router.set_routes(&ctx.client, canary, *routes).await?;
                return Ok(Some(*routes));
            }
            Action::ScaleUpCanary {
                revision: wanted, ..
            } => {
                if wanted != revision {
                    tracing::warn!(
                        wanted,
                        current = revision,
                        "target changed since the engine decided; the next tick restarts"
                    );
                }
                target::upsert(&ctx.client, &ns, &target.canary(canary, label)).await?;
            }
            Action::ScaleDownCanary { .. } => {
                target::scale_down(&ctx.client, kind, &ns, &canary_name).await?;
            }
            Action::Promote {
                revision: promoted, ..
            } => {
                // One write: the stable hash moves and the hold comes off (unpaused, or the user's
                // update strategy back); the webhook agrees, as template and stable hash agree.
                let patch = target.promotion_patch(promoted);
                target::patch(&ctx.client, kind, &ns, &target_name, &patch).await?;
            }
            Action::RecordEvent {
                type_,
                reason,
                message,
            } => {
                let t = match type_ {
                    EventType::Normal => KubeEventType::Normal,
                    EventType::Warning => KubeEventType::Warning,
                };
                tracing::info!(canary = %canary.name_any(), namespace = %ns, reason = ?reason.code, "{message}");
                publish(ctx, canary, t, &format!("{:?}", reason.code), message).await;
            }
            Action::SendAlert {
                severity,
                message,
                alerts,
                reason,
            } => {
                let level = match severity {
                    Severity::Error => "error",
                    Severity::Warn => "warn",
                    Severity::Info => "info",
                };
                tracing::info!(canary = %canary.name_any(), namespace = %ns, severity = level, providers = ?alerts, cluster = %ctx.config.cluster_name, "alert: {message}");
                let alert = crate::notify::alert(
                    ctx,
                    canary,
                    target.images(),
                    revision,
                    *severity,
                    message,
                    reason,
                );
                crate::notify::send(ctx, canary, alerts, alert).await;
            }
            Action::CallWebhook {
                kind,
                phase,
                hook,
                event_message,
                event_type,
            } => {
                let mut payload = checks::payload(
                    canary,
                    status,
                    revision,
                    kind.as_str(),
                    phase.as_str(),
                    hook.metadata.clone(),
                );
                if let Some(m) = event_message {
                    payload.metadata.insert("eventMessage".into(), m.clone());
                    payload.metadata.insert(
                        "eventType".into(),
                        event_type.map(|t| t.as_str()).unwrap_or("Normal").into(),
                    );
                    payload
                        .metadata
                        .insert("timestamp".into(), now_ms().to_string());
                }
                let call = serin_providers::webhook::WebhookCall {
                    url: hook.url.clone(),
                    timeout: hook.timeout(),
                    retries: hook.retries.unwrap_or(0).max(0) as u32,
                    disable_tls: hook.disable_tls.unwrap_or(false),
                };
                let name = hook.name.clone();
                tokio::spawn(async move {
                    if let Err(e) = serin_providers::webhook::call(&call, &payload).await {
                        tracing::warn!(webhook = %name, "webhook failed: {e}");
                    }
                });
            }
            Action::Concluded { .. } => {}
        }
        Ok(None)
    }
}

/// After a restart the controller has no memory of its last tick; the status has it
/// (`lastTickTime`), so an analysis in progress waits out the rest of its interval instead of
/// ticking at once (six restarts had turned a 60 s analysis into 12 s). Anything the user changed
/// since (a new revision, a retry, a command annotation) still ticks at once.
fn resume_wait(
    canary: &Canary,
    revision: &str,
    retry: &Option<String>,
    commands: &serin_analysis::Commands,
    interval: Duration,
) -> Option<Duration> {
    let status = canary.status.as_ref()?;
    let analysing = matches!(
        status.phase,
        Some(Phase::Progressing | Phase::WaitingPromotion)
    );
    let unchanged = status.last_applied_spec.as_deref() == Some(revision)
        && status.last_retry == *retry
        && commands.promote == status.last_promote
        && commands.abort == status.last_abort
        && commands.gate.is_none();
    if !(analysing && unchanged) {
        return None;
    }
    let last: jiff::Timestamp = status.last_tick_time.as_deref()?.parse().ok()?;
    // A last tick in the future (clock skew between replicas) waits one interval at most.
    let elapsed =
        Duration::try_from(jiff::Timestamp::now().duration_since(last)).unwrap_or_default();
    interval.checked_sub(elapsed).filter(|w| !w.is_zero())
}

/// Why the controller cannot drive a Canary; its target stays held until the Canary is fixed.
struct Blocked {
    /// The event's and the condition's reason.
    reason: &'static str,
    message: String,
}

/// The router for a Canary the controller can drive: a valid spec and a provider serin drives
/// that can express what the spec asks of it (mirroring, A/B matches).
fn drivable(ctx: &Context, canary: &Canary) -> Result<Router, Blocked> {
    let invalid = |message: String| Blocked {
        reason: "InvalidSpec",
        message,
    };
    let provider = ctx.provider(canary).map_err(|message| Blocked {
        reason: "UnsupportedProvider",
        message,
    })?;
    let mut errors: Vec<String> =
        validate_document(&serde_json::to_value(canary).map_err(|e| invalid(e.to_string()))?)
            .into_iter()
            .chain(serin_api::validate::router_rules(&canary.spec, provider))
            .filter(|d| d.severity == DiagSeverity::Error)
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect();
    errors.dedup();
    if !errors.is_empty() {
        return Err(invalid(format!(
            "Invalid canary spec: {}",
            errors.join("; ")
        )));
    }
    Router::for_provider(provider).map_err(|e| Blocked {
        reason: "UnsupportedProvider",
        message: e.to_string(),
    })
}

/// A Canary the controller cannot drive still guards its target: the target is adopted (label
/// and stable hash, as at initialization) so the webhook holds every new revision, a held one
/// stays held, and a Warning event and the `Accepted` condition say why and how to fix it. No
/// path lets a revision roll out unanalysed.
async fn hold_blocked(
    ctx: &Context,
    canary: &Canary,
    kind: Kind,
    blocked: &Blocked,
) -> Result<(), Error> {
    let ns = canary.namespace().unwrap_or_default();
    let name = &canary.spec.target_ref.name;
    let message = format!(
        "{}; {} {ns}/{name} is held until the Canary is fixed or deleted",
        blocked.message,
        kind.lower()
    );
    publish(
        ctx,
        canary,
        KubeEventType::Warning,
        blocked.reason,
        &message,
    )
    .await;
    let target = match ctx.cached_workload(kind, &ns, name) {
        Some(w) => Some(w),
        None => target::get(&ctx.client, kind, &ns, name).await?,
    };
    if let Some(target) = target {
        let annotations = target.meta().annotations.clone().unwrap_or_default();
        if !annotations.contains_key(STABLE_HASH_ANNOTATION) {
            let patch = json!({"metadata": {
                "labels": {CANARY_LABEL: canary.name_any()},
                "annotations": {STABLE_HASH_ANNOTATION: target.template_hash()},
            }});
            target::patch(&ctx.client, kind, &ns, name, &patch).await?;
        } else {
            hold_without_webhook(ctx, &target).await?;
        }
    }
    let old = canary.status.clone().unwrap_or_default();
    let mut new = old.clone();
    accepted(&mut new, Some((blocked.reason, &message)));
    write_status(ctx, canary, &old, &new).await?;
    Ok(())
}

/// Sets the `Accepted` condition: `False` with the reason while the Canary cannot be driven,
/// `True` once it can (only when it was `False`, so a healthy Canary's status does not grow).
fn accepted(status: &mut CanaryStatus, blocked: Option<(&str, &str)>) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let current = conditions.iter().position(|c| c.type_ == ACCEPTED);
    let (state, reason, message) = match (blocked, current) {
        (Some((reason, message)), _) => ("False", reason, message),
        (None, Some(i)) if conditions[i].status == "False" => {
            ("True", "Driven", "the controller drives this Canary")
        }
        (None, _) => {
            if conditions.is_empty() {
                status.conditions = None;
            }
            return;
        }
    };
    let now = jiff::Timestamp::now().to_string();
    let condition = serin_api::common::Condition {
        type_: ACCEPTED.into(),
        status: state.into(),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
        reason: Some(reason.into()),
        message: Some(message.into()),
    };
    match current {
        Some(i) if conditions[i].status == state && conditions[i].message == condition.message => {}
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// The condition that says whether the controller can drive the Canary.
const ACCEPTED: &str = "Accepted";

pub fn error_policy(canary: Arc<Canary>, err: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(canary = %canary.name_any(), namespace = canary.namespace().unwrap_or_default(), error = %err, "reconcile failed; retrying");
    Requeue::requeue(ERROR_REQUEUE)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Without the admission webhook a new template rolls out before anyone can hold it; the
/// controller holds it as soon as it sees it (racy: the webhook is the real hold), with the
/// decision the webhook would have made.
async fn hold_without_webhook(ctx: &Context, target: &Workload) -> Result<(), Error> {
    if let Some(patch) = target.fallback_hold() {
        tracing::warn!(workload = %target.who(), "new revision not held by the admission webhook; holding it");
        let ns = target.meta().namespace.clone().unwrap_or_default();
        target::patch(&ctx.client, target.kind(), &ns, &target.name(), &patch).await?;
    }
    Ok(())
}

/// Publishes a Kubernetes event; a failure to record is logged, never fatal.
async fn publish(
    ctx: &Context,
    canary: &Canary,
    type_: KubeEventType,
    reason: &str,
    message: &str,
) {
    let ev = Event {
        type_,
        reason: reason.chars().take(128).collect(),
        note: Some(message.chars().take(1024).collect()),
        // kube's Recorder folds events with the same (type, reason, action, object) into one
        // series that keeps the first note: with a constant action, "Advance … weight 20" would
        // show as a repeat of "… weight 10". Keying on the text keeps every explanation visible
        // and still folds true repeats ("Waiting for … to be ready") into a series.
        action: message.chars().take(128).collect(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &canary.object_ref(&())).await {
        tracing::warn!(error = %e, "recording event failed: {message}");
    }
}

/// A JSON merge patch from `old` to `new` at the top level of the status: fields the engine
/// dropped are removed (`null`), so what is stored is exactly the engine's status.
fn status_patch(old: &CanaryStatus, new: &CanaryStatus) -> Result<Value, Error> {
    let old = serde_json::to_value(old)?;
    let mut new = serde_json::to_value(new)?;
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object_mut()) {
        for k in o.keys() {
            if !n.contains_key(k) {
                n.insert(k.clone(), Value::Null);
            }
        }
    }
    Ok(json!({ "status": new }))
}

/// Writes the status; returns the Canary's new resourceVersion. The patch carries the
/// resourceVersion the tick decided on, so a concurrent change is a 409 and the tick is redone.
async fn write_status(
    ctx: &Context,
    canary: &Canary,
    old: &CanaryStatus,
    new: &CanaryStatus,
) -> Result<Option<String>, Error> {
    if old == new {
        return Ok(None);
    }
    let api: Api<Canary> =
        Api::namespaced(ctx.client.clone(), &canary.namespace().unwrap_or_default());
    let mut patch = status_patch(old, new)?;
    patch["metadata"] = json!({ "resourceVersion": canary.resource_version() });
    let written = api
        .patch_status(
            &canary.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    Ok(written.resource_version())
}

fn record_telemetry(
    ctx: &Context,
    canary: &Canary,
    status: &CanaryStatus,
    labels: &CanaryLabels,
    actions: &[Action],
) {
    let t = &ctx.telemetry;
    let value = match status.phase {
        Some(Phase::Progressing) => 0,
        Some(Phase::Failed) => 2,
        _ => 1,
    };
    t.status.get_or_create(labels).set(value);
    let target = &canary.spec.target_ref.name;
    t.weight
        .get_or_create(&WeightLabels {
            workload: target.clone(),
            namespace: labels.namespace.clone(),
        })
        .set(100 - status.canary_weight as i64);
    t.weight
        .get_or_create(&WeightLabels {
            workload: format!("{target}{CANARY_SUFFIX}"),
            namespace: labels.namespace.clone(),
        })
        .set(status.canary_weight as i64);
    for m in &status.metrics {
        if let Some(v) = m.value {
            t.metric_analysis
                .get_or_create(&MetricLabels {
                    name: labels.name.clone(),
                    namespace: labels.namespace.clone(),
                    metric: m.name.clone(),
                })
                .set(v);
        }
    }
    for a in actions {
        if let Action::Concluded { result } = a {
            let r = ResultLabels {
                name: target.clone(),
                namespace: labels.namespace.clone(),
                deployment_strategy: canary.spec.strategy().as_str().into(),
                analysis_status: if *result == Conclusion::Skipped {
                    "skipped"
                } else {
                    "completed"
                }
                .into(),
            };
            match result {
                Conclusion::RolledBack => t.failures.get_or_create(&r).inc(),
                _ => t.successes.get_or_create(&r).inc(),
            };
        }
    }
}
