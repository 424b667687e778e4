use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topik = "orders.created")]
struct OrderCreated {
    id: u64,
}

fn main() {}
