use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(version = "2")]
struct OrderCreated {
    id: u64,
}

fn main() {}
