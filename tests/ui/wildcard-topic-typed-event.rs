use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler(topic = "orders.*")]
async fn on_any_order(_evt: OrderCreated) {}

fn main() {}
