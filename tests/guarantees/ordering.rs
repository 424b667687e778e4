//! Per-key order: with `ordered`, events of one key are applied in publish
//! order, even with concurrency and failures retried along the way.

use eventwire::prelude::*;
use eventwire::Outcome;

use crate::bus::{Bus, PATIENCE};
use crate::delivery::publish_all;
use crate::features::Features;
use crate::support::{eventually, Arrival, Instance, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.step")]
pub struct Step {
    #[event(key)]
    account: String,
    seq: u32,
}

#[handler(
    group = "g-ordered",
    ordered,
    concurrency = 8,
    retries = 3,
    backoff = "1ms..2ms"
)]
async fn apply_step(
    evt: Step,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) -> Result<(), HandlerError> {
    if rec.arrived(&ctx, me, evt.seq) == Arrival::Sentinel {
        return Ok(());
    }
    // Vary the time each event takes so that lanes interleave.
    for _ in 0..(evt.seq % 3) {
        tokio::task::yield_now().await;
    }
    if evt.seq % 17 == 5 && ctx.attempt() == 1 {
        return Err(HandlerError::msg("transient failure"));
    }
    rec.applied(&ctx, evt.seq);
    Ok(())
}

/// 10 keys × 50 events, `ordered` with concurrency 8, some events failing
/// once: every key's events are applied in publish order, each once, and
/// the failures were retried in place.
pub async fn per_key_order_under_concurrency(bus: &Bus, _features: &Features) {
    const KEYS: u32 = 10;
    const SEQ: u32 = 50;
    let rec = Recorder::default();
    let app = bus.app(&["apply_step"], &rec).await;
    let publisher = app.publisher();
    let steps: Vec<Step> = (0..SEQ)
        .flat_map(|seq| {
            (0..KEYS).map(move |account| Step {
                account: format!("acct-{account}"),
                seq,
            })
        })
        .collect();
    publish_all(&publisher, &steps).await;
    let total = (KEYS * SEQ) as usize;
    eventually(PATIENCE, "every step applied", || {
        rec.effects("apply_step").values().sum::<usize>() >= total
    })
    .await;
    let sentinel = Step {
        account: "sentinel".into(),
        seq: u32::MAX,
    };
    bus.drain(&publisher, &sentinel, &rec, &[("apply_step", 0)])
        .await;
    let by_key = rec.effects_by_key("apply_step");
    assert_eq!(by_key.len() as u32, KEYS);
    for (account, seqs) in &by_key {
        assert_eq!(
            seqs,
            &(0..SEQ).collect::<Vec<_>>(),
            "order of {account}: each step once, in publish order"
        );
    }
    // seq % 17 == 5: 3 of every key's 50 steps fail once.
    let retried = rec.runs_where("apply_step", |o| matches!(o, Outcome::Retrying { .. }));
    assert_eq!(
        retried,
        3 * KEYS as usize,
        "the failures were retried in place"
    );
    app.shutdown().await.unwrap();
}
