use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 2, upcast_from = OrderCreatedB)]
struct OrderCreatedA {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created", version = 3, upcast_from = OrderCreatedA)]
struct OrderCreatedB {
    id: u64,
}

impl From<OrderCreatedB> for OrderCreatedA {
    fn from(v: OrderCreatedB) -> Self {
        OrderCreatedA { id: v.id }
    }
}

impl From<OrderCreatedA> for OrderCreatedB {
    fn from(v: OrderCreatedA) -> Self {
        OrderCreatedB { id: v.id }
    }
}

fn main() {}
