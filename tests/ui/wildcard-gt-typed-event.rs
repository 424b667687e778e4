use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler(topic = "orders.>")]
async fn on_orders(_evt: OrderCreated) {}

fn main() {}
