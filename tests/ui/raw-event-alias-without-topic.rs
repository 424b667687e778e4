use eventwire::prelude::*;

type Raw = RawEvent;

#[handler]
async fn audit(_evt: Raw) {}

fn main() {}
