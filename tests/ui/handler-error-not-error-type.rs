use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[derive(Debug)]
struct OutOfStock;

#[handler]
async fn on_order(_evt: OrderCreated) -> Result<(), OutOfStock> {
    Err(OutOfStock)
}

fn main() {}
