//! Per-key order: with `ordered`, events of one key are applied in publish
//! order, even with concurrency and failures retried along the way.

use crate::prelude::*;
use eventwire::Outcome;

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::scenarios::delivery::publish_all;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.step`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.step")]
pub struct Step {
    #[event(key)]
    account: String,
    seq: u32,
}

#[handler(
    group = "conformance-ordered",
    ordered,
    concurrency = 8,
    retries = 3,
    backoff = "1ms..2ms"
)]
async fn conformance_apply_step(
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

/// 16 keys × 63 events (1 008), `ordered` with concurrency 8, some events
/// failing once: every key's events are applied in publish order, each
/// once, and the failures were retried in place.
pub async fn per_key_order_under_concurrency(bus: &Bus, _features: &Features) {
    const KEYS: u32 = 16;
    const SEQ: u32 = 63;
    let rec = Recorder::default();
    let app = bus.app(&["conformance_apply_step"], &rec).await;
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
        rec.effects("conformance_apply_step")
            .values()
            .sum::<usize>()
            >= total
    })
    .await;
    let sentinel = Step {
        account: "sentinel".into(),
        seq: u32::MAX,
    };
    bus.drain(
        &publisher,
        &sentinel,
        &rec,
        &[("conformance_apply_step", 0)],
    )
    .await;
    let by_key = rec.effects_by_key("conformance_apply_step");
    assert_eq!(by_key.len() as u32, KEYS);
    for (account, seqs) in &by_key {
        assert_eq!(
            seqs,
            &(0..SEQ).collect::<Vec<_>>(),
            "order of {account}: each step once, in publish order"
        );
    }
    // seq % 17 == 5: 4 of every key's 63 steps (5, 22, 39, 56) fail once.
    let retried = rec.runs_where("conformance_apply_step", |o| {
        matches!(o, Outcome::Retrying { .. })
    });
    assert_eq!(
        retried,
        4 * KEYS as usize,
        "the failures were retried in place"
    );
    app.shutdown().await.unwrap();
}
