use eventwire::prelude::*;

#[handler(topic = "orders.>", dead_letter = "orders.failed")]
async fn audit(_evt: RawEvent) {}

fn main() {}
