use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler]
async fn on_order(_ctx: Context, _evt: OrderCreated) {}

fn main() {}
