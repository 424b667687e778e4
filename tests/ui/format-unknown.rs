use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(format = "xml")]
struct OrderCreated {
    id: u64,
}

fn main() {}
