use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "")]
struct OrderCreated {
    id: u64,
}

fn main() {}
