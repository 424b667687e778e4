use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler]
struct OnOrder;

fn main() {}
