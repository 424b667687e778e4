//! An orders flow on the in-memory bus, no server needed:
//! an order is placed → inventory reserves stock and publishes
//! `StockReserved` → the email handler confirms it.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use eventwire::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "orders.placed", version = 1)]
pub struct OrderPlaced {
    #[event(key)]
    pub order_id: String,
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "inventory.stock-reserved")]
pub struct StockReserved {
    #[event(key)]
    pub order_id: String,
    pub sku: String,
}

/// The service's state, given to the builder and taken by handlers as `State<Stock>`.
#[derive(Clone)]
pub struct Stock {
    available: Arc<AtomicU32>,
}

#[handler(group = "inventory", retries = 3, timeout = "5s")]
async fn reserve_stock(
    evt: OrderPlaced,
    ctx: Context,
    State(stock): State<Stock>,
) -> Result<(), HandlerError> {
    let left = stock
        .available
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            n.checked_sub(evt.quantity)
        })
        .map_err(|_| {
            println!(
                "[inventory] out of stock for {}: dead-lettered, no retry",
                evt.order_id
            );
            HandlerError::permanent_msg(format!("out of stock for {}", evt.order_id))
        })?;
    println!(
        "[inventory] reserved {} x {} for {} ({} left)",
        evt.quantity,
        evt.sku,
        evt.order_id,
        left - evt.quantity
    );
    ctx.publish(&StockReserved {
        order_id: evt.order_id,
        sku: evt.sku,
    })
    .await?;
    Ok(())
}

#[handler(group = "email")]
async fn send_confirmation(evt: StockReserved, ctx: Context) {
    println!(
        "[email] order {} confirmed (correlation {})",
        evt.order_id,
        ctx.correlation_id().unwrap_or("-")
    );
}

#[tokio::main]
async fn main() -> eventwire::Result<()> {
    let app = App::builder()
        .service("shop")
        .transport_from_env()? // EVENTWIRE_URL, memory:// when unset
        .state(Stock {
            available: Arc::new(AtomicU32::new(5)),
        })
        .build()
        .await?;
    println!("[shop] running handlers {:?}", app.handler_names());

    let publisher = app.publisher();
    for (i, quantity) in [2, 2, 3].into_iter().enumerate() {
        let order = OrderPlaced {
            order_id: format!("order-{}", i + 1),
            sku: "blue-mug".into(),
            quantity,
        };
        let id = publisher.publish(&order).await?;
        println!("[orders] placed {} as event {id}", order.order_id);
    }

    app.wait_idle().await?;
    let metrics = app.metrics();
    let report = app.shutdown().await?;
    for (handler, m) in &metrics.handlers {
        println!(
            "[shop] {handler}: {} succeeded, {} retried, {} dead-lettered",
            m.succeeded, m.retried, m.dead_lettered
        );
    }
    println!("[shop] stopped cleanly in {:?}", report.elapsed);
    Ok(())
}
