use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(format = "protobuf")]
struct OrderCreated {
    id: u64,
}

fn main() {}
