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
        return cx.into_compile_errors();
    }
    expand::expand(&parsed)
}
