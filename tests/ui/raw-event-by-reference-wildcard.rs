use eventwire::prelude::*;

#[handler(topic = "orders.>")]
async fn audit(_evt: &RawEvent) {}

fn main() {}
