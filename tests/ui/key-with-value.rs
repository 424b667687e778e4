use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    #[event(key = "id")]
    id: u64,
}

fn main() {}
