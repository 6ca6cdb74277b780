//! hey's closed model on goose: `-c` goose users, each paced by its own `-q` ticker and given
//! its share of `-n`, stopping at `-z`. Runs only inside a worker process (goose's killswitch and
//! ctrl-c handler are process-global), which ends the goose attack with the killswitch once every
//! user has finished its share.
//!
//! When every request of the attack can go over [`crate::wire`] (HTTP/1.1 keep-alive, plain or TLS), each goose
//! user runs its whole share as one transaction on the per-core [`Engine`]: goose launches the
//! users and bounds the run, the requests themselves run without goose's per-request scheduling
//! (a transaction call, its metrics channel and a task hop cost more CPU than the request itself).
//! Otherwise goose steps each request through reqwest.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::engine::Engine;
use crate::request::{Prepared, error_kind};
use crate::spec::{AttackSpec, Stop};
use crate::summary::{Outcome, Recorder};
use crate::tls::Stream;
use crate::wire::{Conn, WireRequest};

/// One goose user's pacing; each user only ever locks its own.
struct UserState {
    budget: Option<u64>,
    sent: u64,
    tick: u64,
    client_set: bool,
    done: bool,
}

/// Recorded outcomes: one per engine thread on the wire path (its users record without
/// contention, and one histogram per core stays in cache where one per user did not), one per
/// user otherwise.
struct Figures {
    recorder: Recorder,
    last_end: Option<Instant>,
}

pub(crate) struct Closed {
    spec: AttackSpec,
    client: reqwest::Client,
    prepared: Vec<Prepared>,
    /// Every request over `wire`, or `None` when one of them needs reqwest.
    wire: Option<Vec<WireRequest>>,
    /// Weighted round robin over the requests for the wire path (goose weighs the stepped path).
    order: Vec<usize>,
    engine: Option<Engine>,
    users: Vec<Mutex<UserState>>,
    figures: Vec<Mutex<Figures>>,
    start: OnceLock<Instant>,
    finished: AtomicU32,
}

enum Plan {
    Go(Option<Instant>),
    Done,
}

impl Closed {
    pub(crate) fn new(
        spec: &AttackSpec,
        client: reqwest::Client,
        prepared: Vec<Prepared>,
    ) -> std::io::Result<Arc<Self>> {
        let c = u64::from(spec.concurrency);
        let users = (0..c)
            .map(|i| {
                let budget = match spec.stop {
                    // hey drops the remainder of n / c; here the first n % c workers take one more,
                    // so -n is exact.
                    Stop::Requests(n) => Some(n / c + u64::from(i < n % c)),
                    Stop::Duration(_) => None,
                };
                Mutex::new(UserState {
                    budget,
                    sent: 0,
                    tick: 0,
                    client_set: false,
                    done: false,
                })
            })
            .collect();
        let wire = spec
            .requests
            .iter()
            .map(|r| WireRequest::new(spec, r))
            .collect::<Option<Vec<_>>>();
        let order = spec
            .requests
            .iter()
            .enumerate()
            .flat_map(|(i, r)| std::iter::repeat_n(i, r.weight.max(1) as usize))
            .collect();
        let engine = match wire {
            Some(_) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                Some(Engine::start(cores.min(c as usize))?)
            }
            None => None,
        };
        let shards = engine.as_ref().map_or(c as usize, Engine::threads);
        let figures = (0..shards)
            .map(|_| {
                Mutex::new(Figures {
                    recorder: Recorder::new(),
                    last_end: None,
                })
            })
            .collect();
        Ok(Arc::new(Closed {
            figures,
            spec: spec.clone(),
            client,
            prepared,
            wire,
            order,
            engine,
            users,
            start: OnceLock::new(),
            finished: AtomicU32::new(0),
        }))
    }

    /// Merged figures of all users so far.
    pub(crate) fn merged(&self) -> Recorder {
        let mut all = Recorder::new();
        for f in &self.figures {
            all.merge(&lock(f).recorder);
        }
        all
    }

    /// From the first request to the end of the last one (goose's shutdown is not part of the run).
    pub(crate) fn elapsed(&self) -> Duration {
        let Some(start) = self.start.get() else {
            return Duration::ZERO;
        };
        let end = self.figures.iter().filter_map(|f| lock(f).last_end).max();
        end.map(|e| e.saturating_duration_since(*start))
            .unwrap_or_default()
    }

    fn plan(&self, state: &mut UserState, start: Instant) -> Plan {
        if state.done || state.budget.is_some_and(|b| state.sent >= b) {
            return Plan::Done;
        }
        let now = Instant::now();
        // hey checks -z when a request is done, then waits for its next tick and sends: a
        // worker that is back before -z sends once more, at a tick just after it.
        if let Stop::Duration(z) = self.spec.stop
            && now >= start + z
        {
            return Plan::Done;
        }
        let at = self
            .spec
            .qps_per_worker
            .map(|q| next_tick(&mut state.tick, hey_period_us(q), start, now));
        // But -z ends the run: hey would wait a whole period (1000 s at -q 0.001).
        if let (Stop::Duration(z), Some(at)) = (self.spec.stop, at)
            && at > start + z + LATE_TICK_GRACE
        {
            return Plan::Done;
        }
        state.sent += 1;
        Plan::Go(at)
    }

    /// Marks the user done; the last one ends the goose attack.
    fn finish(&self, state: &mut UserState) {
        if !state.done {
            state.done = true;
            if self.finished.fetch_add(1, Ordering::SeqCst) + 1 == self.spec.concurrency {
                goose::trigger_killswitch("every worker finished its requests");
            }
        }
    }

    /// The goose transaction of the wire path: the user's whole share on the engine.
    async fn run_user(self: Arc<Self>, user: &mut GooseUser) -> TransactionResult {
        let index = user.weighted_users_index % self.users.len();
        let engine = self.engine.as_ref().expect("the wire path has an engine");
        if !lock(&self.users[index]).done {
            let me = self.clone();
            let _ = engine.spawn(index, me.user_loop(index)).await;
            // Also when the loop panicked, so the attack still ends.
            self.finish(&mut lock(&self.users[index]));
        }
        // Idle until goose stops this user; the killswitch follows shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }

    async fn user_loop(self: Arc<Self>, index: usize) {
        let start = *self.start.get_or_init(Instant::now);
        let slot = &self.users[index];
        let wire = self.wire.as_ref().expect("the wire path has its requests");
        let mut conn = None;
        // One timer per connection, moved forward per request: cheaper than a timeout each time.
        let mut deadline = self
            .spec
            .timeout
            .map(|_| Box::pin(tokio::time::sleep(Duration::from_secs(3600))));
        let mut next = index;
        loop {
            let at = {
                let mut state = lock(slot);
                match self.plan(&mut state, start) {
                    Plan::Go(at) => at,
                    Plan::Done => {
                        self.finish(&mut state);
                        return;
                    }
                }
            };
            if let Some(at) = at {
                tokio::time::sleep_until(at.into()).await;
            }
            let which = self.order[next % self.order.len()];
            next += 1;
            let sent_at = Instant::now();
            let outcome = self
                .send_wire(
                    &mut conn,
                    &wire[which],
                    &self.prepared[which],
                    &mut deadline,
                )
                .await;
            let elapsed = sent_at.elapsed();
            let mut f = lock(&self.figures[index % self.figures.len()]);
            f.recorder.record(elapsed, outcome);
            f.last_end = Some(sent_at + elapsed);
        }
    }

    /// Sends `r` on the user's connection (opened on demand, dropped after an error or a close),
    /// following a redirect with reqwest unless `-disable-redirects`.
    async fn send_wire(
        &self,
        conn: &mut Option<Conn<Stream>>,
        r: &WireRequest,
        prepared: &Prepared,
        deadline: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    ) -> Outcome {
        let result = {
            let attempt = async {
                let c = match conn {
                    Some(c) => c,
                    None => conn.insert(Conn::new(r.connect().await?)),
                };
                c.exchange(r).await.map_err(|e| e.to_string())
            };
            match (deadline.as_mut(), self.spec.timeout) {
                (Some(sleep), Some(t)) => {
                    sleep.as_mut().reset((Instant::now() + t).into());
                    tokio::select! {
                        biased;
                        result = attempt => result,
                        _ = sleep.as_mut() => Err(format!("timeout: no response within {}s", t.as_secs())),
                    }
                }
                _ => attempt.await,
            }
        };
        match result {
            Ok(reply) => {
                if !reply.reusable {
                    *conn = None;
                }
                match reply.location {
                    Some(location) if !self.spec.disable_redirects => {
                        let Ok(next) = r.base.join(&location) else {
                            return prepared.outcome(reply.status);
                        };
                        let rb = self.client.request(reqwest::Method::GET, next.as_str());
                        crate::request::send(rb, prepared, Instant::now()).await.1
                    }
                    _ => prepared.outcome(reply.status),
                }
            }
            Err(e) => {
                *conn = None;
                Outcome::Error(e)
            }
        }
    }

    async fn step(&self, user: &mut GooseUser, which: usize) -> TransactionResult {
        let start = *self.start.get_or_init(Instant::now);
        let index = user.weighted_users_index % self.users.len();
        let slot = &self.users[index];
        let plan = {
            let mut state = lock(slot);
            if !state.client_set {
                // goose executes requests with the user's client: make it the attack's client.
                user.client = self.client.clone();
                state.client_set = true;
            }
            let plan = self.plan(&mut state, start);
            if matches!(plan, Plan::Done) {
                self.finish(&mut state);
            }
            plan
        };
        let at = match plan {
            Plan::Done => {
                // Idle until goose stops this user; the killswitch follows shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Ok(());
            }
            Plan::Go(at) => at,
        };
        if let Some(at) = at {
            tokio::time::sleep_until(at.into()).await;
        }
        let prepared = &self.prepared[which];
        let rb = prepared.builder(&self.client, !self.spec.disable_keepalive);
        let sent_at = Instant::now();
        let outcome = match user
            .request(GooseRequest::builder().set_request_builder(rb).build())
            .await
        {
            Ok(resp) => match resp.response {
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.bytes().await {
                        Ok(_) => prepared.outcome(status),
                        Err(e) => Outcome::Error(error_kind(&e)),
                    }
                }
                Err(e) => Outcome::Error(error_kind(&e)),
            },
            Err(e) => Outcome::Error(format!("request error: {e}")),
        };
        let elapsed = sent_at.elapsed();
        let mut f = lock(&self.figures[index % self.figures.len()]);
        f.recorder.record(elapsed, outcome);
        f.last_end = Some(sent_at + elapsed);
        Ok(())
    }
}

/// How long after -z a worker still waits for the tick hey would send there.
pub(crate) const LATE_TICK_GRACE: Duration = Duration::from_secs(1);

/// hey's ticker period for `-q`: `time.Duration(1e6/q) * time.Microsecond`, whole microseconds
/// (at least one: the parser refuses rates above a million per second).
pub(crate) fn hey_period_us(q: f64) -> u64 {
    ((1e6 / q) as u64).max(1)
}

/// The due time of a worker's next request under `-q`, as Go's `time.Tick` delivers it to hey:
/// ticks at k × period for k ≥ 1 (the first one period in), and a channel of one, so a worker
/// that fell behind gets the first tick it missed at once and the others are dropped.
/// `tick` is the index of the last tick taken.
pub(crate) fn next_tick(tick: &mut u64, period_us: u64, start: Instant, now: Instant) -> Instant {
    let due = |k: u64| start + Duration::from_micros(k.saturating_mul(period_us));
    let next = *tick + 1;
    let fired = now.saturating_duration_since(start).as_micros() as u64 / period_us;
    // Ticks after `next` that already fired found the channel full.
    *tick = next.max(fired);
    due(next)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the goose attack to its end (every user done, or the safety run time).
pub(crate) async fn run(closed: Arc<Closed>) -> Result<(), GooseError> {
    let spec = &closed.spec;
    let mut scenario = scenario!("serin-loadtest");
    if closed.wire.is_some() {
        let me = closed.clone();
        let tx: TransactionFunction = Arc::new(move |user| Box::pin(me.clone().run_user(user)));
        scenario = scenario.register_transaction(Transaction::new(tx).set_name("user"));
    }
    for (i, r) in spec
        .requests
        .iter()
        .enumerate()
        .filter(|_| closed.wire.is_none())
    {
        let me = closed.clone();
        let tx: TransactionFunction = Arc::new(move |user| {
            let me = me.clone();
            Box::pin(async move { me.step(user, i).await })
        });
        scenario = scenario.register_transaction(
            Transaction::new(tx)
                .set_name(&format!("request-{i}"))
                .set_weight(r.weight.max(1) as usize)?,
        );
    }
    let host = url::Url::parse(&spec.requests[0].url)
        .map(|u| u[..url::Position::BeforePath].to_string())
        .unwrap_or_else(|_| "http://127.0.0.1".into());
    let users = spec.concurrency as usize;
    // Launch every user at once (hey starts all workers together).
    let increase = (users * 100).max(1000).to_string();
    // goose would build a reqwest client per user, each loading the system's root certificates
    // (7% of the worker's CPU in a 4 s attack); the users send with the attack's client anyway, so
    // they share one that verifies nothing and loads nothing.
    let clients = GooseClientBuilder::new()
        .without_cookies()
        .accept_invalid_certs(true);
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .set_client_builder_without_cookies(clients)?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, host.as_str())?
        .set_default(GooseDefault::Users, users)?
        .set_default(GooseDefault::IncreaseRate, increase.as_str())?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoMetrics, true)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoResetMetrics, true)?
        .set_default(GooseDefault::Quiet, 1usize)?;
    if let Stop::Duration(z) = spec.stop {
        // A safety net only: the users stop themselves at -z and trigger the killswitch.
        let slack = spec.timeout.unwrap_or(Duration::from_secs(60)).as_secs() + 5;
        let run_time = (z.as_secs() + 1 + slack) as usize;
        attack = attack.set_default(GooseDefault::RunTime, run_time)?;
    }
    let result = attack.execute().await;
    if let Some(engine) = &closed.engine {
        engine.shutdown();
    }
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests one worker sends under `-q q -z z` when each request takes 1 ms, by the rule of
    /// `Closed::plan`: back before -z, it waits for its next tick (one period in at first).
    fn sent(q: f64, z: Duration) -> u64 {
        let start = Instant::now();
        let (mut tick, mut sent, mut now) = (0, 0, start);
        while now < start + z {
            let at = next_tick(&mut tick, hey_period_us(q), start, now);
            if at > start + z + LATE_TICK_GRACE {
                break;
            }
            sent += 1;
            now = at + Duration::from_millis(1);
        }
        sent
    }

    /// Counts measured with hey 0.1.4 against a local server (per worker).
    #[test]
    fn hey_ticks_start_one_period_in() {
        // The 6th tick is at 1.999998 s; its request ends after -z.
        assert_eq!(sent(3.0, Duration::from_secs(2)), 6);
        // Back at 1.901 s, the worker waits for the tick at 2 s and sends.
        assert_eq!(sent(10.0, Duration::from_secs(2)), 20);
        assert_eq!(sent(7.0, Duration::from_millis(1500)), 11);
        assert_eq!(sent(1.0, Duration::from_secs(1)), 1);
        assert_eq!(sent(0.5, Duration::from_secs(3)), 2);
        // hey would wait 1000 s for its first tick; -z ends the run.
        assert_eq!(sent(0.001, Duration::from_secs(2)), 0);
        assert_eq!(hey_period_us(3.0), 333_333);
    }

    #[test]
    fn a_late_worker_gets_one_missed_tick_then_the_schedule() {
        let start = Instant::now();
        let p = hey_period_us(10.0); // 100 ms
        let mut tick = 0;
        assert_eq!(
            next_tick(&mut tick, p, start, start),
            start + Duration::from_millis(100)
        );
        // Back at 450 ms: ticks 2, 3, 4 fired; the channel held tick 2, 3 and 4 were dropped.
        let now = start + Duration::from_millis(450);
        assert_eq!(
            next_tick(&mut tick, p, start, now),
            start + Duration::from_millis(200)
        );
        assert_eq!(
            next_tick(&mut tick, p, start, now),
            start + Duration::from_millis(500)
        );
    }
}
