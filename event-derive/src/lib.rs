//! Procedural macros of eventwire: `#[derive(Event)]` and `#[handler]`.
//!
//! Use them through the `eventwire` crate, which re-exports them; the code
//! they generate reaches the runtime through `::eventwire::__private`.
//! Each macro is a pipeline: parse (`ast`, `attr`) → validate (`check`) →
//! generate (`expand`). Every error of one invocation is reported at once.

mod attr;
mod ctxt;
mod duration;
mod event;
mod handler;
mod symbol;
mod topic;

use proc_macro::TokenStream;
use syn::parse_macro_input;

/// Implements `eventwire::Event` for a struct and registers it.
///
/// ```ignore
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(topic = "orders.created", version = 2, format = "json")]
/// struct OrderCreated {
///     #[event(key)]
///     order_id: String,
/// }
/// ```
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as syn::DeriveInput);
    event::derive(&input).into()
}

/// Turns an `async fn` into a registered event handler; the function stays
/// callable as it is.
///
/// ```ignore
/// #[handler(group = "inventory", retries = 5, timeout = "30s")]
/// async fn reserve_stock(evt: OrderCreated, ctx: Context) -> Result<(), HandlerError> { Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}
