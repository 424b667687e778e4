use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler]
fn on_order(_evt: OrderCreated) -> impl std::future::Future<Output = ()> {
    async {}
}

fn main() {}
