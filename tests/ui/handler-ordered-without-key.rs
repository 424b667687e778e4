use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler(ordered)]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
