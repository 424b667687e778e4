use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    #[event(key)]
    order_id: String,
    #[event(key)]
    user_id: String,
}

fn main() {}
