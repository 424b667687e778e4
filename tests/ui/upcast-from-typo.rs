use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 2, upcast_from = OrderCreatedV0)]
struct OrderCreated {
    id: u64,
}

fn main() {}
