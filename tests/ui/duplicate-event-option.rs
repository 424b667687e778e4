use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
#[event(topic = "orders.placed")]
struct OrderCreated {
    id: u64,
}

fn main() {}
