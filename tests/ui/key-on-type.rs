use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", key)]
struct OrderCreated {
    id: u64,
}

fn main() {}
