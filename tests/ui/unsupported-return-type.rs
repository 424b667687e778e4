use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    id: u64,
}

#[handler]
async fn on_order(evt: OrderCreated) -> u64 {
    evt.id
}

fn main() {}
