use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler]
async fn on_order(evt: OrderCreated) -> Result<u64, HandlerError> {
    Ok(evt.id)
}

fn main() {}
