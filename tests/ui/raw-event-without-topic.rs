use eventwire::prelude::*;

#[handler]
async fn on_anything(_evt: RawEvent) {}

fn main() {}
