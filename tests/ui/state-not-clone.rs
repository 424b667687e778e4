use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

struct Db;

#[handler]
async fn on_order(_evt: OrderCreated, _db: State<Db>) {}

fn main() {}
