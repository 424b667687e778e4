// One mistake in the derive is reported once, not again at the handler.
use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(version = 0)]
struct OrderCreated {
    id: u64,
}

#[handler]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
