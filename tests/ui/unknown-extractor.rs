use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct OrderCreated {
    id: u64,
}

struct Db;

#[handler]
async fn on_order(_evt: OrderCreated, _db: Db) {}

fn main() {}
