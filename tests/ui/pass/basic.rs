use std::sync::Arc;

use eventwire::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 2, format = "json")]
pub struct OrderCreated {
    #[event(key)]
    pub order_id: String,
    pub total_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StockReserved(#[event(key)] pub u64);

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub enum AccountChanged {
    Opened { id: u64 },
    Closed { id: u64 },
}

#[derive(Clone)]
struct Db(Arc<String>);

#[handler(
    topic = "orders.created",
    group = "inventory",
    name = "reserve",
    retries = 5,
    backoff = "100ms..10s",
    timeout = "30s",
    concurrency = 8,
    ordered,
    durable = "inventory-reserve",
    start = "all",
    dead_letter = "orders.failed"
)]
async fn reserve_stock(
    evt: OrderCreated,
    ctx: Context,
    State(db): State<Db>,
) -> Result<(), HandlerError> {
    let _ = (&db.0, evt.total_cents);
    ctx.publish(&StockReserved(1)).await?;
    Ok(())
}

#[handler(group = "email", timeout = "none", ordered = false, durable = false, start = "new")]
async fn confirm(_evt: StockReserved) {}

#[handler(topic = "orders.>", group = "audit")]
async fn audit(evt: RawEvent) -> Result<(), std::io::Error> {
    let _ = evt.payload();
    Ok(())
}

#[handler]
async fn account(_evt: AccountChanged) {}

fn main() {
    // The function stays an ordinary function.
    let _fut = confirm(StockReserved(7));
    assert_eq!(<OrderCreated as Event>::TOPIC, "orders.created");
    assert_eq!(StockReserved::TOPIC, "stock.reserved");
    assert_eq!(AccountChanged::TOPIC, "account.changed");
}
