//! What handlers saw: every delivery (each attempt, at the start of the
//! handler, with its metadata), every side effect (once the handler did its
//! work), and every attempt's outcome as the app reports it (the recorder is
//! also the app's [`Observer`]). Shared by the instances of one test (clones
//! share the log), so a test can count per event, per attempt, per instance
//! and per key.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::prelude::*;
use eventwire::{HandlerRun, Observer, Outcome};

/// The header of sentinel events: published after the events of a test to
/// learn that everything before them went through (see the guarantee
/// suite's `Bus::drain`). Handlers record them apart and return at once.
pub const SENTINEL_HEADER: &str = "x-eventwire-test-sentinel";

/// Which app instance a handler runs in (given to each app as state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance(pub u32);

/// One delivery: one attempt of one handler on one event.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The handler.
    pub handler: &'static str,
    /// The app instance it ran in.
    pub instance: u32,
    /// The test's number of the event (a payload field).
    pub n: u32,
    /// `ce-id`.
    pub event_id: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The event's topic.
    pub topic: String,
    /// `ce-source`: the publishing service.
    pub source: String,
    /// The event's key.
    pub key: Option<String>,
    /// Correlation id.
    pub correlation: Option<String>,
    /// Causation id.
    pub causation: Option<String>,
    /// W3C `traceparent`.
    pub traceparent: Option<String>,
    /// Extension headers.
    pub headers: Vec<(String, String)>,
    /// When the event occurred (`ce-time`).
    pub time: SystemTime,
    /// When this delivery reached the handler.
    pub arrived_at: Instant,
}

/// A side effect a handler applied (after its work succeeded).
#[derive(Debug, Clone)]
pub struct Effect {
    /// The handler.
    pub handler: &'static str,
    /// The test's number of the event.
    pub n: u32,
    /// The event's key.
    pub key: Option<String>,
}

/// What [`Recorder::arrived`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// An event of the test: the handler does its work.
    Event,
    /// A sentinel: the handler returns at once.
    Sentinel,
}

#[derive(Default)]
struct Log {
    deliveries: Vec<Delivery>,
    /// Deliveries per handler: tests poll these while events flow.
    delivered: HashMap<&'static str, usize>,
    effects: Vec<Effect>,
    /// Side effects per handler and event number.
    applied: HashMap<&'static str, BTreeMap<u32, usize>>,
    runs: Vec<HandlerRun>,
    /// (handler, instance, event id) of every sentinel seen.
    sentinels: Vec<(&'static str, u32, String)>,
}

/// Shared log of a test. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Log>>);

impl Observer for Recorder {
    fn handler_finished(&self, run: &HandlerRun) {
        self.log().runs.push(run.clone());
    }
}

impl Recorder {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a delivery; call it first thing in a handler. `n` is the
    /// event's number in the test.
    pub fn arrived(&self, ctx: &Context, me: Instance, n: u32) -> Arrival {
        let handler = ctx.handler();
        if ctx.header(SENTINEL_HEADER).is_some() {
            self.log()
                .sentinels
                .push((handler, me.0, ctx.event_id().to_string()));
            return Arrival::Sentinel;
        }
        let delivery = Delivery {
            handler,
            instance: me.0,
            n,
            event_id: ctx.event_id().to_string(),
            attempt: ctx.attempt(),
            topic: ctx.topic().to_owned(),
            source: ctx.source().to_owned(),
            key: ctx.key().map(str::to_owned),
            correlation: ctx.correlation_id().map(str::to_owned),
            causation: ctx.causation_id().map(str::to_owned),
            traceparent: ctx.traceparent().map(str::to_owned),
            headers: ctx.headers().to_vec(),
            time: ctx.occurred_at(),
            arrived_at: Instant::now(),
        };
        let mut log = self.log();
        log.deliveries.push(delivery);
        *log.delivered.entry(handler).or_default() += 1;
        Arrival::Event
    }

    /// [`Recorder::arrived`], then [`Recorder::applied`] unless it is a
    /// sentinel: the whole body of a handler that only records.
    pub fn record(&self, ctx: &Context, me: Instance, n: u32) -> Arrival {
        let arrival = self.arrived(ctx, me, n);
        if arrival == Arrival::Event {
            self.applied(ctx, n);
        }
        arrival
    }

    /// Records that a handler applied its side effect for event `n`.
    pub fn applied(&self, ctx: &Context, n: u32) {
        let handler = ctx.handler();
        let mut log = self.log();
        log.effects.push(Effect {
            handler,
            n,
            key: ctx.key().map(str::to_owned),
        });
        *log.applied
            .entry(handler)
            .or_default()
            .entry(n)
            .or_default() += 1;
    }

    /// Every delivery to `handler` (sentinels excluded), in arrival order.
    pub fn deliveries(&self, handler: &str) -> Vec<Delivery> {
        self.log()
            .deliveries
            .iter()
            .filter(|d| d.handler == handler)
            .cloned()
            .collect()
    }

    /// Deliveries to `handler` so far.
    pub fn count(&self, handler: &str) -> usize {
        self.log().delivered.get(handler).copied().unwrap_or(0)
    }

    /// The attempt numbers `handler` saw, per event id, in arrival order.
    pub fn attempts(&self, handler: &str) -> BTreeMap<String, Vec<u32>> {
        let mut by_id: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for d in self
            .log()
            .deliveries
            .iter()
            .filter(|d| d.handler == handler)
        {
            by_id.entry(d.event_id.clone()).or_default().push(d.attempt);
        }
        by_id
    }

    /// The attempt numbers of event `n` at `handler`, in arrival order.
    pub fn attempts_of(&self, handler: &str, n: u32) -> Vec<u32> {
        self.log()
            .deliveries
            .iter()
            .filter(|d| d.handler == handler && d.n == n)
            .map(|d| d.attempt)
            .collect()
    }

    /// Instances that received at least one event for `handler`.
    pub fn instances(&self, handler: &str) -> BTreeSet<u32> {
        self.log()
            .deliveries
            .iter()
            .filter(|d| d.handler == handler)
            .map(|d| d.instance)
            .collect()
    }

    /// Side effects `handler` applied, per event number.
    pub fn effects(&self, handler: &str) -> BTreeMap<u32, usize> {
        self.log().applied.get(handler).cloned().unwrap_or_default()
    }

    /// How many distinct events `handler` applied.
    pub fn applied_events(&self, handler: &str) -> usize {
        self.log().applied.get(handler).map_or(0, BTreeMap::len)
    }

    /// Whether `handler` applied event `n`.
    pub fn has_applied(&self, handler: &str, n: u32) -> bool {
        self.log()
            .applied
            .get(handler)
            .is_some_and(|m| m.contains_key(&n))
    }

    /// Side effects `handler` applied, in order, per key.
    pub fn effects_by_key(&self, handler: &str) -> BTreeMap<String, Vec<u32>> {
        let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for e in self.log().effects.iter().filter(|e| e.handler == handler) {
            by_key
                .entry(e.key.clone().unwrap_or_default())
                .or_default()
                .push(e.n);
        }
        by_key
    }

    /// Whether `handler` in `instance` has seen a sentinel.
    pub fn saw_sentinel(&self, handler: &str, instance: u32) -> bool {
        self.log()
            .sentinels
            .iter()
            .any(|(h, i, _)| *h == handler && *i == instance)
    }

    /// Whether `handler` (in any instance) has seen the sentinel `id`.
    pub fn saw_sentinel_id(&self, handler: &str, id: &str) -> bool {
        self.log()
            .sentinels
            .iter()
            .any(|(h, _, s)| *h == handler && s == id)
    }

    /// Every attempt of `handler` as the app reported it (sentinels
    /// excluded), in the order they finished.
    pub fn runs(&self, handler: &str) -> Vec<HandlerRun> {
        let log = self.log();
        let sentinels: HashSet<&str> = log.sentinels.iter().map(|(_, _, id)| &**id).collect();
        log.runs
            .iter()
            .filter(|r| r.handler == handler && !sentinels.contains(r.event_id.as_str()))
            .cloned()
            .collect()
    }

    /// Attempts of `handler` that ended with `pred`.
    pub fn runs_where(&self, handler: &str, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.runs(handler)
            .iter()
            .filter(|r| pred(&r.outcome))
            .count()
    }
}
