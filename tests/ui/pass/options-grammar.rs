// Durations in humantime's grammar, a boxed `Send + Sync` error, a
// dead-letter topic beside a wildcard, `ordered` on a keyed event.
use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    #[event(key)]
    id: u64,
}

#[handler(timeout = "1m 30s", backoff = "250ms..1d", ordered, dead_letter = "orders.created.failed")]
async fn on_order(_evt: OrderCreated) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

#[handler(topic = "orders.*", dead_letter = "audit.failed", timeout = "2d")]
async fn audit(_evt: RawEvent, _ctx: Context) {}

fn main() {}
