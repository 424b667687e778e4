use eventwire::prelude::*;

#[handler]
async fn on_any<E: Event>(_evt: E) {}

fn main() {}
