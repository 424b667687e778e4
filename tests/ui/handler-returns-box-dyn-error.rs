use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler]
async fn on_order(_evt: OrderCreated) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}

fn main() {}
