//! The inventory service of the orders system: reserves stock for every
//! `OrderPlaced` and publishes `StockReserved` from the handler, so the new
//! event carries the order's correlation id. Runs until SIGINT/SIGTERM.
//!
//! ```text
//! EVENTWIRE_URL=jetstream://127.0.0.1:4222 cargo run --example inventory_service
//! ```
//!
//! On JetStream the handler's durable consumer `inventory__reserve_order_stock`
//! is created when the service starts, with the default start position
//! (`new`): orders placed before its first start are not replayed, and after
//! a restart it resumes where it stopped. It is deliberately not
//! `start = "all"`: a first deployment would otherwise reserve stock again
//! for every order still stored in the stream.

#[path = "orders_system/events.rs"]
mod events;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use events::{OrderPlaced, StockReserved, SKUS};
use eventwire::prelude::*;

/// Units on hand per SKU and the orders already reserved, shared by the
/// handler's concurrent runs.
#[derive(Clone, Default)]
struct Warehouse {
    inner: Arc<Mutex<Stock>>,
}

#[derive(Default)]
struct Stock {
    units: HashMap<String, u32>,
    /// Order id → units of its SKU left right after its reservation.
    reserved: HashMap<String, u32>,
}

impl Warehouse {
    fn stocked(units_per_sku: u32) -> Self {
        let warehouse = Warehouse::default();
        warehouse.lock().units = SKUS
            .iter()
            .map(|sku| (sku.to_string(), units_per_sku))
            .collect();
        warehouse
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stock> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `quantity` units of `sku` for `order_id`, once per order (a
    /// retry or a redelivery does not take them again); the units left, or
    /// `None` when there are not enough.
    fn reserve(&self, order_id: &str, sku: &str, quantity: u32) -> Option<u32> {
        let mut stock = self.lock();
        if let Some(&remaining) = stock.reserved.get(order_id) {
            return Some(remaining);
        }
        let units = stock.units.get_mut(sku)?;
        *units = units.checked_sub(quantity)?;
        let remaining = *units;
        stock.reserved.insert(order_id.to_owned(), remaining);
        Some(remaining)
    }
}

#[handler(
    group = "inventory",
    retries = 3,
    backoff = "200ms",
    timeout = "10s",
    concurrency = 4,
    ordered
)]
async fn reserve_order_stock(
    evt: OrderPlaced,
    ctx: Context,
    State(warehouse): State<Warehouse>,
) -> Result<(), HandlerError> {
    // No retry can conjure up stock: a permanent error dead-letters the order at once.
    let remaining = warehouse
        .reserve(&evt.order_id, &evt.sku, evt.quantity)
        .ok_or_else(|| {
            HandlerError::permanent_msg(format!(
                "not enough {} for {} ({} wanted)",
                evt.sku, evt.order_id, evt.quantity
            ))
        })?;
    println!(
        "[inventory] reserved {} x {} for {} ({remaining} left, attempt {})",
        evt.quantity,
        evt.sku,
        evt.order_id,
        ctx.attempt()
    );
    // When this publish fails the handler is retried; the reservation above
    // is keyed by order, so the retry does not take the stock twice.
    ctx.publish(&StockReserved {
        order_id: evt.order_id,
        customer: evt.customer,
        sku: evt.sku,
        quantity: evt.quantity,
        remaining,
    })
    .await?;
    Ok(())
}

async fn run() -> eventwire::Result<()> {
    let app = App::builder()
        .service("inventory")
        .transport_from_env()?
        .handlers(HandlerSelection::groups(["inventory"]))
        .state(Warehouse::stocked(1_000))
        .build()
        .await?;
    // The consumers exist from here on: scripts/demo-nats waits for this line.
    println!(
        "[inventory] running on {} with handlers {:?}",
        app.transport_kind(),
        app.handler_names()
    );
    app.run().await?;
    println!("[inventory] stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[inventory] error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
