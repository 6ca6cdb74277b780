//! hey's closed model on goose: `-c` goose users, each paced by its own `-q` ticker and given
//! its share of `-n`, stopping at `-z`. Runs only inside a worker process (goose's killswitch and
//! ctrl-c handler are process-global), which ends the goose attack with the killswitch once every
//! user has finished its share.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::fast::{Conn, FastRequest, send_fast};
use crate::request::{Prepared, error_kind};
use crate::spec::{AttackSpec, Stop};
use crate::summary::{Outcome, Recorder};

/// One goose user's pacing and figures; each user only ever locks its own.
struct UserState {
    recorder: Recorder,
    budget: Option<u64>,
    sent: u64,
    tick: u64,
    client_set: bool,
    done: bool,
    conn: Option<Conn>,
    last_end: Option<Instant>,
}

pub(crate) struct Closed {
    spec: AttackSpec,
    client: reqwest::Client,
    prepared: Vec<Prepared>,
    fast: Vec<Option<FastRequest>>,
    users: Vec<Mutex<UserState>>,
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
    ) -> Arc<Self> {
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
                    recorder: Recorder::new(),
                    budget,
                    sent: 0,
                    tick: 0,
                    client_set: false,
                    done: false,
                    conn: None,
                    last_end: None,
                })
            })
            .collect();
        let fast = spec
            .requests
            .iter()
            .map(|r| FastRequest::new(spec, r))
            .collect();
        Arc::new(Closed {
            spec: spec.clone(),
            client,
            prepared,
            fast,
            users,
            start: OnceLock::new(),
            finished: AtomicU32::new(0),
        })
    }

    /// Merged figures of all users so far.
    pub(crate) fn merged(&self) -> Recorder {
        let mut all = Recorder::new();
        for u in &self.users {
            all.merge(&lock(u).recorder);
        }
        all
    }

    /// From the first request to the end of the last one (goose's shutdown is not part of the run).
    pub(crate) fn elapsed(&self) -> Duration {
        let Some(start) = self.start.get() else {
            return Duration::ZERO;
        };
        let end = self.users.iter().filter_map(|u| lock(u).last_end).max();
        end.map(|e| e.saturating_duration_since(*start))
            .unwrap_or_default()
    }

    fn plan(&self, state: &mut UserState, start: Instant) -> Plan {
        if state.done || state.budget.is_some_and(|b| state.sent >= b) {
            return Plan::Done;
        }
        let now = Instant::now();
        let at = self.spec.qps_per_worker.map(|q| {
            let period = Duration::from_secs_f64(1.0 / q);
            let mut at = start + period.mul_f64(state.tick as f64);
            // Like Go's time.Tick, a worker that fell behind drops the ticks it missed.
            if at + period < now {
                state.tick = (now.duration_since(start).as_secs_f64() * q) as u64;
                at = start + period.mul_f64(state.tick as f64);
            }
            state.tick += 1;
            at
        });
        if let Stop::Duration(z) = self.spec.stop
            && at.unwrap_or(now) >= start + z
        {
            return Plan::Done;
        }
        state.sent += 1;
        Plan::Go(at)
    }

    async fn step(&self, user: &mut GooseUser, which: usize) -> TransactionResult {
        let start = *self.start.get_or_init(Instant::now);
        let slot = &self.users[user.weighted_users_index % self.users.len()];
        let plan = {
            let mut state = lock(slot);
            if !state.client_set {
                // goose executes requests with the user's client: make it the attack's client.
                user.client = self.client.clone();
                state.client_set = true;
            }
            let plan = self.plan(&mut state, start);
            if matches!(plan, Plan::Done) && !state.done {
                state.done = true;
                if self.finished.fetch_add(1, Ordering::SeqCst) + 1 == self.spec.concurrency {
                    goose::trigger_killswitch("every worker finished its requests");
                }
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
        if let Some(fast) = &self.fast[which] {
            let mut conn = lock(slot).conn.take();
            let sent_at = Instant::now();
            let outcome = send_fast(&mut conn, fast, prepared, &self.client, &self.spec).await;
            let elapsed = sent_at.elapsed();
            let mut state = lock(slot);
            state.conn = conn;
            state.recorder.record(elapsed, outcome);
            state.last_end = Some(sent_at + elapsed);
            return Ok(());
        }
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
        let mut state = lock(slot);
        state.recorder.record(elapsed, outcome);
        state.last_end = Some(sent_at + elapsed);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the goose attack to its end (every user done, or the safety run time).
pub(crate) async fn run(closed: Arc<Closed>) -> Result<(), GooseError> {
    let spec = &closed.spec;
    let mut scenario = scenario!("serin-loadtest");
    for (i, r) in spec.requests.iter().enumerate() {
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
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())?
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
    attack.execute().await?;
    Ok(())
}
