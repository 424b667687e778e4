// Generated code stays quiet under strict crate-level lints: a user crate
// with `#![deny(warnings, missing_docs, ...)]` compiles.
#![deny(warnings)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unreachable_pub)]
#![deny(unused_qualifications)]
#![deny(unused_results)]
#![deny(trivial_casts, trivial_numeric_casts)]
#![deny(elided_lifetimes_in_paths)]
#![deny(non_ascii_idents)]
#![deny(unused_extern_crates)]
#![deny(clippy::all)]
//! A strict crate.

use eventwire::prelude::*;

/// An event.
#[derive(Debug, Serialize, Deserialize, Event)]
#[event(topic = "lints.checked", version = 2)]
pub struct Checked {
    /// The key.
    #[event(key)]
    pub id: u64,
}

/// A handler.
#[handler(topic = "lints.checked", retries = 1, backoff = "1ms..1s", timeout = "1s")]
pub async fn on_checked(_evt: Checked, _ctx: Context) -> Result<(), HandlerError> {
    Ok(())
}

/// A raw handler.
#[handler(topic = "lints.>")]
pub async fn on_raw(_evt: RawEvent) {}

fn main() {}
