use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "Orders..created", version = 0, format = "xml")]
struct OrderCreated {
    #[event(key)]
    id: u64,
    #[event(key)]
    other: u64,
}

fn main() {}
