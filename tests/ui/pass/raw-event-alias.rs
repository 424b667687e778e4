// A `RawEvent` behind a type alias works like `RawEvent` written out.
use eventwire::prelude::*;

type Raw = RawEvent;

#[handler(topic = "orders.created")]
async fn audit(_evt: Raw) {}

fn main() {}
