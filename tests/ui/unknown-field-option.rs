use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    #[event(kee)]
    id: u64,
}

fn main() {}
