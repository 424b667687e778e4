use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(version = 5000000000)]
struct OrderCreated {
    id: u64,
}

fn main() {}
