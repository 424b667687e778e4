//! The inventory service of the multi-process example: reserves stock for
//! every order and publishes `StockReserved`. Runs until SIGINT/SIGTERM.
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example nats_inventory
//! cargo run --example nats_inventory -- describe --format mermaid
//! cargo run --example nats_inventory -- lock --path examples/shop/eventwire.lock
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
async fn main() -> std::process::ExitCode {
    let builder = match App::builder().service("inventory").transport_from_env() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // `nats_inventory check | describe --format mermaid | lock --path ...`
    if std::env::args().len() > 1 {
        return eventwire::cli::main(builder).await;
    }
    match run(builder).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(builder: eventwire::AppBuilder) -> eventwire::Result<()> {
    let app = builder.build().await?;
    println!("[inventory] running on {}", app.transport_kind());
    app.run().await
}
