use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "Orders.Created")]
struct OrderCreated {
    id: u64,
}

fn main() {}
