//! The email service of the orders system: sends an order confirmation for
//! every `StockReserved` and records it as `OrderConfirmationSent`. Runs
//! until SIGINT/SIGTERM.
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example email_service
//! ```
//!
//! Like the inventory service, its durable consumer starts at new events
//! (the default), not `start = "all"`: a first deployment must not email
//! every customer whose stock was ever reserved.

#[path = "orders_system/events.rs"]
mod events;

use events::{OrderConfirmationSent, StockReserved};
use eventwire::prelude::*;

#[handler(group = "email", retries = 5, backoff = "500ms..10s", concurrency = 4)]
async fn email_order_confirmation(evt: StockReserved, ctx: Context) -> Result<(), HandlerError> {
    // A real service would call its mail provider here.
    println!(
        "[email] confirmation sent for {} to {}: {} x {} reserved (correlation {})",
        evt.order_id,
        evt.customer,
        evt.quantity,
        evt.sku,
        ctx.correlation_id().unwrap_or("-")
    );
    ctx.publish(&OrderConfirmationSent {
        order_id: evt.order_id,
        recipient: evt.customer,
    })
    .await?;
    Ok(())
}

async fn run() -> eventwire::Result<()> {
    let app = App::builder()
        .service("email")
        .transport_from_env()?
        .handlers(HandlerSelection::groups(["email"]))
        .build()
        .await?;
    // The consumers exist from here on: scripts/demo-nats waits for this line.
    println!(
        "[email] running on {} with handlers {:?}",
        app.transport_kind(),
        app.handler_names()
    );
    app.run().await?;
    println!("[email] stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[email] error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
