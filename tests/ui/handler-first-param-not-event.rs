use eventwire::prelude::*;

struct NotAnEvent {
    id: u64,
}

#[handler]
async fn on_thing(_evt: NotAnEvent) {}

fn main() {}
