use eventwire::prelude::*;

#[derive(Serialize, Event)]
struct OrderCreated {
    id: u64,
}

fn main() {}
