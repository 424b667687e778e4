use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

use std::rc::Rc;

async fn yield_now() {}

#[handler]
async fn on_order(evt: OrderCreated) {
    let local = Rc::new(evt.id);
    yield_now().await;
    let _ = local;
}

fn main() {}
