use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    id: u64,
}

#[handler(retries = "five", backoff = "soon", concurency = 4)]
async fn on_order(_evt: OrderCreated) {}

fn main() {}
