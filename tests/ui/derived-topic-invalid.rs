use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct Événement {
    id: u64,
}

fn main() {}
