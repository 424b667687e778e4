use eventwire::prelude::*;

#[derive(Event)]
struct OrderCreated {
    id: u64,
}

fn main() {}
