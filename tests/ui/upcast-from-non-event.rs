use eventwire::prelude::*;

#[derive(Serialize, Deserialize)]
struct OrderCreatedV1 {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 2, upcast_from = OrderCreatedV1)]
struct OrderCreated {
    id: u64,
}

impl From<OrderCreatedV1> for OrderCreated {
    fn from(v: OrderCreatedV1) -> Self {
        OrderCreated { id: v.id }
    }
}

fn main() {}
