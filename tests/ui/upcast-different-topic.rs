use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.placed", version = 1)]
struct OrderPlacedV1 {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 2, upcast_from = OrderPlacedV1)]
struct OrderCreated {
    id: u64,
}

impl From<OrderPlacedV1> for OrderCreated {
    fn from(v: OrderPlacedV1) -> Self {
        OrderCreated { id: v.id }
    }
}

fn main() {}
