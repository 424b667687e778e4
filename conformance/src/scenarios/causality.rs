//! Causality: an event published from a handler with `ctx.publish`, or
//! through the publisher `ctx.publisher()` hands to other code, carries the
//! correlation id and trace of the event being handled, and names it as its
//! cause.

use crate::prelude::*;
use eventwire::PublishOptions;

use crate::bus::{Bus, PATIENCE};
use crate::features::Features;
use crate::support::{eventually, Arrival, Instance, Recorder};

/// An event of the scenarios here (topic `eventwire-conformance.checkout`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.checkout")]
pub struct CheckoutStarted {
    cart: u32,
}

/// An event of the scenarios here (topic `eventwire-conformance.invoice`).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "eventwire-conformance.invoice")]
pub struct InvoiceIssued {
    cart: u32,
}

#[handler(group = "conformance-checkout")]
async fn conformance_issue_invoice(
    evt: CheckoutStarted,
    ctx: Context,
    State(rec): State<Recorder>,
    State(me): State<Instance>,
) -> Result<(), HandlerError> {
    if rec.arrived(&ctx, me, evt.cart) == Arrival::Event {
        let invoice = InvoiceIssued { cart: evt.cart };
        // Odd carts through `ctx.publish`, even ones through the publisher
        // the context hands out (it used to be the plain app publisher,
        // which dropped every link).
        if evt.cart % 2 == 1 {
            ctx.publish(&invoice).await?;
        } else {
            send_invoice(ctx.publisher(), &invoice).await?;
        }
    }
    Ok(())
}

/// W3C trace context continues: the same trace id and flags, and a parent
/// id of its own (the handler's publish), not the cause's.
fn assert_child_of(child: Option<&str>, parent: &str) {
    let child = child.expect("the trace context is passed on");
    assert_eq!(child.len(), parent.len(), "{child}");
    assert_eq!(
        &child[..36],
        &parent[..36],
        "same version and trace id: {child}"
    );
    assert_eq!(&child[52..], &parent[52..], "same flags: {child}");
    assert_ne!(
        &child[36..52],
        &parent[36..52],
        "a parent id of its own: {child}"
    );
}

/// Code that only knows a `Publisher`.
async fn send_invoice(publisher: Publisher, invoice: &InvoiceIssued) -> Result<(), HandlerError> {
    publisher.publish(invoice).await?;
    Ok(())
}

#[handler(group = "conformance-billing")]
async fn conformance_record_invoice(
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
pub async fn correlation_and_causation_through_ctx_publish_and_ctx_publisher(
    bus: &Bus,
    _features: &Features,
) {
    let rec = Recorder::default();
    let checkout = bus.app(&["conformance_issue_invoice"], &rec).await;
    let billing = bus.app(&["conformance_record_invoice"], &rec).await;
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
        .publish_with(
            &CheckoutStarted { cart: 10 },
            PublishOptions::new().traceparent(traceparent),
        )
        .await
        .unwrap();
    eventually(PATIENCE, "both invoices", || {
        rec.count("conformance_record_invoice") == 2
    })
    .await;

    let invoices = rec.deliveries("conformance_record_invoice");
    let first = invoices.iter().find(|d| d.n == 9).unwrap();
    assert_eq!(first.correlation.as_deref(), Some("checkout-9"));
    assert_eq!(first.causation.as_deref(), Some(root.as_str()));
    assert_child_of(first.traceparent.as_deref(), traceparent);
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
    assert_child_of(second.traceparent.as_deref(), traceparent);

    let roots = rec.deliveries("conformance_issue_invoice");
    let root_delivery = roots.iter().find(|d| d.n == 9).unwrap();
    assert_eq!(root_delivery.causation, None, "a root event has no cause");
    checkout.shutdown().await.unwrap();
    billing.shutdown().await.unwrap();
}
