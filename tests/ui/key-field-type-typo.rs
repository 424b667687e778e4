use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    #[event(key)]
    id: Strin,
}

fn main() {}
