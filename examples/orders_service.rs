//! The orders service of the orders system: places `--orders N` orders
//! (`OrderPlaced`), then exits. It has no handlers: it only publishes.
//! Run the whole system with `scripts/demo-nats`, or by hand with a
//! nats-server started with `-js`:
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example inventory_service
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example email_service
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example orders_service -- --orders 20
//! ```
//!
//! Without `EVENTWIRE_URL` it publishes to the in-memory bus of its own
//! process, where nobody listens.

#[path = "orders_system/events.rs"]
mod events;

use std::process::ExitCode;

use events::{OrderPlaced, SKUS};
use eventwire::prelude::*;

const USAGE: &str = "usage: orders_service [--orders N]   (default 10)";

fn parse_args() -> Result<u32, String> {
    let mut orders = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--orders" => args.next(),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => match arg.strip_prefix("--orders=") {
                Some(v) => Some(v.to_owned()),
                None => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
            },
        };
        orders = value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("--orders needs a positive number\n{USAGE}"))?;
    }
    Ok(orders)
}

async fn place_orders(count: u32) -> eventwire::Result<()> {
    let app = App::builder()
        .service("orders")
        .transport_from_env()?
        .build()
        .await?;
    println!("[orders] connected to {}", app.transport_kind());
    let publisher = app.publisher();
    for n in 1..=count {
        let order = OrderPlaced {
            order_id: format!("order-{n}"),
            customer: format!("customer-{}@example.com", n % 7),
            sku: SKUS[n as usize % SKUS.len()].to_owned(),
            quantity: 1 + n % 3,
        };
        // On JetStream this returns once the server stored the event.
        let id = publisher.publish(&order).await?;
        println!(
            "[orders] placed {} ({} x {}) as event {id}",
            order.order_id, order.quantity, order.sku
        );
    }
    app.shutdown().await?;
    println!("[orders] placed {count} orders");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let count = match parse_args() {
        Ok(n) => n,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match place_orders(count).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[orders] error: {e}");
            ExitCode::FAILURE
        }
    }
}
