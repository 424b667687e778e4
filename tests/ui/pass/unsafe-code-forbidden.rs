// A crate with `#![forbid(unsafe_code)]` can still use both macros.
#![forbid(unsafe_code)]

use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct Checked {
    id: u64,
}

#[handler]
async fn on_checked(_evt: Checked) {}

fn main() {}
