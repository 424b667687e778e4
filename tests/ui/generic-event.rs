use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct Envelope<T> {
    inner: T,
}

fn main() {}
