//! The inventory service of the multi-process example: reserves stock for
//! every order and publishes `StockReserved`. Runs until SIGINT/SIGTERM.
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example nats_inventory
//! ```

#[path = "shop/events.rs"]
mod events;

use events::{OrderPlaced, StockReserved};
use eventwire::prelude::*;

#[handler(
    group = "inventory",
    retries = 3,
    backoff = "200ms",
    concurrency = 8,
    ordered
)]
async fn reserve_stock(evt: OrderPlaced, ctx: Context) -> Result<(), HandlerError> {
    println!(
        "[inventory] reserved {} x {} for {} (attempt {})",
        evt.quantity,
        evt.sku,
        evt.order_id,
        ctx.attempt()
    );
    ctx.publish(&StockReserved {
        order_id: evt.order_id,
        quantity: evt.quantity,
    })
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> eventwire::Result<()> {
    let app = App::builder()
        .service("inventory")
        .transport_from_env()?
        .build()
        .await?;
    println!("[inventory] running on {}", app.transport_kind());
    app.run().await
}
