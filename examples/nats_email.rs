//! The email service of the multi-process example: confirms every order
//! whose stock was reserved. Runs until SIGINT/SIGTERM.
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example nats_email
//! ```

#[path = "shop/events.rs"]
mod events;

use events::StockReserved;
use eventwire::prelude::*;

#[handler(group = "email", concurrency = 4)]
async fn send_confirmation(evt: StockReserved, ctx: Context) {
    println!(
        "[email] confirmed {} ({} units; caused by event {})",
        evt.order_id,
        evt.quantity,
        ctx.causation_id().unwrap_or("-")
    );
}

#[tokio::main]
async fn main() -> eventwire::Result<()> {
    let app = App::builder()
        .service("email")
        .transport_from_env()?
        .build()
        .await?;
    println!("[email] running on {}", app.transport_kind());
    app.run().await
}
