use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 1)]
struct OrderCreatedV1 {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 2, upcast_from = OrderCreatedV1)]
struct OrderCreated {
    id: u64,
}

fn main() {}
