//! The orders service of the multi-process example: publishes orders, then
//! exits. Run with `scripts/nats-demo`, or by hand:
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example nats_orders -- 20
//! ```

#[path = "shop/events.rs"]
mod events;

use events::OrderPlaced;
use eventwire::prelude::*;

#[tokio::main]
async fn main() -> eventwire::Result<()> {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    // This binary has no handlers; the app only publishes.
    let app = App::builder()
        .service("orders")
        .transport_from_env()?
        .build()
        .await?;
    let orders: Vec<OrderPlaced> = (1..=count)
        .map(|n| OrderPlaced {
            order_id: format!("order-{n}"),
            sku: "blue-mug".into(),
            quantity: 1 + n % 3,
        })
        .collect();
    for (order, result) in orders
        .iter()
        .zip(app.publisher().publish_batch(&orders).await)
    {
        println!("[orders] placed {} as event {}", order.order_id, result?);
    }
    app.shutdown().await?;
    Ok(())
}
