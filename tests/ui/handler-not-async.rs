use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    id: u64,
}

#[handler]
fn on_order(_evt: OrderCreated) {}

fn main() {}
