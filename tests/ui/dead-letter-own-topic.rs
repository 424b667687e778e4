use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler(topic = "orders.created", dead_letter = "orders.created")]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
