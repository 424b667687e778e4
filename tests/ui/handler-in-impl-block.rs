use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

struct Inventory;

impl Inventory {
    #[handler]
    async fn on_order(_evt: OrderCreated) {}
}

fn main() {}
