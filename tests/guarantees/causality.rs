//! Causality: an event published from a handler with `ctx.publish` carries
//! the correlation id and trace of the event being handled, and names it as
//! its cause.

use eventwire::prelude::*;
use eventwire::PublishOptions;

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::support::{eventually, Arrival, Instance, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.checkout")]
pub struct CheckoutStarted {
    cart: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "test.guarantees.invoice")]
pub struct InvoiceIssued {
    cart: u32,
}

#[handler(group = "g-checkout")]
async fn issue_invoice(
    evt: CheckoutStarted,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) -> Result<(), HandlerError> {
    if rec.arrived(&ctx, me, evt.cart) == Arrival::Event {
        ctx.publish(&InvoiceIssued { cart: evt.cart }).await?;
    }
    Ok(())
}

#[handler(group = "g-billing")]
async fn record_invoice(
    evt: InvoiceIssued,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) {
    rec.arrived(&ctx, me, evt.cart);
}

/// A root event with a correlation id, a traceparent and a custom header:
/// the event its handler publishes keeps the correlation id and the trace,
/// names the root as its cause, and does not inherit the custom header. A
/// root event without a correlation id correlates to itself.
pub async fn correlation_and_causation_through_ctx_publish(bus: &Bus, _features: &Features) {
    let rec = Recorder::default();
    let checkout = bus.app(&["issue_invoice"], &rec).await;
    let billing = bus.app(&["record_invoice"], &rec).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let root = checkout
        .publisher()
        .publish_with(
            &CheckoutStarted { cart: 9 },
            PublishOptions::new()
                .correlation_id("checkout-9")
                .traceparent(traceparent)
                .header("x-tenant", "acme"),
        )
        .await
        .unwrap();
    let root2 = checkout
        .publisher()
        .publish(&CheckoutStarted { cart: 10 })
        .await
        .unwrap();
    eventually(PATIENCE, "both invoices", || {
        rec.count("record_invoice") == 2
    })
    .await;

    let invoices = rec.deliveries("record_invoice");
    let first = invoices.iter().find(|d| d.n == 9).unwrap();
    assert_eq!(first.correlation.as_deref(), Some("checkout-9"));
    assert_eq!(first.causation.as_deref(), Some(root.as_str()));
    assert_eq!(first.traceparent.as_deref(), Some(traceparent));
    assert!(
        first.headers.iter().all(|(k, _)| k != "x-tenant"),
        "custom headers belong to one event, they are not inherited: {:?}",
        first.headers
    );
    assert_eq!(first.source, crate::bus::SERVICE);

    let second = invoices.iter().find(|d| d.n == 10).unwrap();
    assert_eq!(
        second.correlation.as_deref(),
        Some(root2.as_str()),
        "a root event without a correlation id correlates to itself"
    );
    assert_eq!(second.causation.as_deref(), Some(root2.as_str()));

    let roots = rec.deliveries("issue_invoice");
    let root_delivery = roots.iter().find(|d| d.n == 9).unwrap();
    assert_eq!(root_delivery.causation, None, "a root event has no cause");
    checkout.shutdown().await.unwrap();
    billing.shutdown().await.unwrap();
}
