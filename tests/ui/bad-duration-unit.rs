use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler(timeout = "30 secs later")]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
