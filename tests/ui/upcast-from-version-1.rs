use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreatedV0 {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", upcast_from = OrderCreatedV0)]
struct OrderCreated {
    id: u64,
}

fn main() {}
