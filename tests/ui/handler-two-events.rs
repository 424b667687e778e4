use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.paid")]
struct OrderPaid {
    id: u64,
}

#[handler]
async fn on_order(_evt: OrderCreated, _paid: OrderPaid) {}

fn main() {}
