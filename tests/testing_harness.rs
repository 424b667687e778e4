//! The harness users test their handlers with (`eventwire::testing::TestApp`):
//! an app on a recording in-memory bus. Publish, wait until idle, then look
//! at what was published (decoded, in order), which handler attempts ran
//! with which outcome, and what was dead-lettered. The delivery guarantees
//! themselves are proven on every transport by the guarantee suite
//! (`conformance/`, run by `tests/conformance.rs`).

mod support;

use std::time::Duration;

use eventwire::prelude::*;
use eventwire::testing::TestApp;
use eventwire::{HandlerErrorKind, Outcome, PublishOptions};
use support::eventually;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.harness.checkout")]
struct CheckoutStarted {
    cart: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(topic = "test.harness.invoice")]
struct InvoiceIssued {
    cart: u32,
}

#[handler(group = "harness-checkout")]
async fn open_invoice(evt: CheckoutStarted, ctx: Context) -> Result<(), HandlerError> {
    ctx.publish(&InvoiceIssued { cart: evt.cart }).await?;
    Ok(())
}

#[handler(group = "harness-billing", retries = 3, backoff = "1ms")]
async fn book_invoice(evt: InvoiceIssued, ctx: Context) -> Result<(), HandlerError> {
    match evt.cart {
        13 => Err(HandlerError::permanent_msg("cart 13 is cursed")),
        7 if ctx.attempt() == 1 => Err(HandlerError::msg("ledger busy")),
        _ => Ok(()),
    }
}

#[tokio::test]
async fn test_app_records_publishes_runs_and_dead_letters() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::groups([
            "harness-checkout",
            "harness-billing",
        ]))
        .build()
        .await
        .unwrap();
    let root = app
        .publisher()
        .publish_with(
            &CheckoutStarted { cart: 9 },
            PublishOptions::new().correlation_id("checkout-9"),
        )
        .await
        .unwrap();
    app.publish(&CheckoutStarted { cart: 7 }).await.unwrap();
    app.publish(&CheckoutStarted { cart: 13 }).await.unwrap();
    app.wait_idle().await;

    // What was published, decoded and in order, handlers' publishes included.
    assert_eq!(
        app.published::<CheckoutStarted>(),
        [9, 7, 13].map(|cart| CheckoutStarted { cart })
    );
    let mut invoices = app.published::<InvoiceIssued>();
    invoices.sort_by_key(|i| i.cart);
    assert_eq!(invoices, [7, 9, 13].map(|cart| InvoiceIssued { cart }));
    let envelopes = app.published_envelopes();
    let invoice_9 = envelopes
        .iter()
        .find(|e| &*e.topic == "test.harness.invoice" && e.payload.as_ref() == br#"{"cart":9}"#)
        .unwrap();
    assert_eq!(invoice_9.causation_id.as_deref(), Some(root.as_str()));
    assert_eq!(invoice_9.correlation_id.as_deref(), Some("checkout-9"));

    // Dead letters: the permanent failure, at its first attempt.
    let letters = app.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].handler, "book_invoice");
    assert_eq!(letters[0].group, "harness-billing");
    assert_eq!(letters[0].error_kind, HandlerErrorKind::Permanent);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].error, "cart 13 is cursed");

    // Handler runs. The dispatcher reports a run just after it settles the
    // delivery, so `wait_idle` can return before the last run is recorded
    // (a runtime gap, reported): wait for the runs instead of assuming them.
    eventually(Duration::from_secs(10), "every run recorded", || {
        app.runs().len() == 3 + 4
    })
    .await;
    assert_eq!(app.succeeded("open_invoice"), 3);
    assert_eq!(app.succeeded("book_invoice"), 2);
    let book = app.runs_of("book_invoice");
    assert_eq!(book.len(), 4, "{book:#?}");
    assert_eq!(
        book.iter()
            .filter(
                |r| matches!(&r.outcome, Outcome::Retrying { error, .. } if error == "ledger busy")
            )
            .count(),
        1
    );
    assert!(book
        .iter()
        .any(|r| r.attempt == 2 && r.outcome == Outcome::Succeeded));
    assert!(book.iter().any(|r| matches!(
        &r.outcome,
        Outcome::DeadLettered {
            kind: HandlerErrorKind::Permanent,
            ..
        }
    )));
    app.shutdown().await.unwrap();
}
