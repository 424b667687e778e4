use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.*")]
struct OrderCreated {
    id: u64,
}

fn main() {}
