use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    id: u64,
}

#[handler(backoff = "10s..1s")]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
