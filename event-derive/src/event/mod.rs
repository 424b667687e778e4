//! `#[derive(Event)]`: parse → validate → expand.

mod ast;
mod attr;
mod check;
mod expand;
mod schema;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

pub(crate) fn derive(input: &syn::DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let parsed = ast::Input::from_syn(&cx, input);
    check::check(&cx, &parsed);
    if cx.has_errors() {
        // A stand-in impl, so that one mistake here is not repeated as
        // "not an event" at every handler and publish of the type.
        let mut out = expand::fallback(&parsed);
        out.extend(cx.into_compile_errors());
        return out;
    }
    expand::expand(&parsed)
}
