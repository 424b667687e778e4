use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    id: u64,
}

#[handler(timeout = "3 parsecs")]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
