use eventwire::prelude::*;

#[handler]
async fn on_nothing() {}

fn main() {}
