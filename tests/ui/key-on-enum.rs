use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
enum OrderChanged {
    Created {
        #[event(key)]
        id: u64,
    },
    Cancelled {
        id: u64,
    },
}

fn main() {}
