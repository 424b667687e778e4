use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    #[event(key)]
    order_id: Option<String>,
}

fn main() {}
