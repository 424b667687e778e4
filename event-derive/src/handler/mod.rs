//! `#[handler]`: parse → validate → expand. On errors the user's function is
//! still emitted, so the only errors shown are the ones about the attribute.

mod ast;
mod attr;
mod check;
mod expand;

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let mut out = syn::Error::new_spanned(
                &item,
                "`#[handler]` goes on an `async fn` whose first parameter is the event",
            )
            .to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let cx = Ctxt::default();
    let options = attr::parse(&cx, args);
    let handler = ast::Handler::from_syn(&func);
    check::check(&cx, &options, &handler);
    if cx.has_errors() {
        let mut out = func.to_token_stream();
        out.extend(cx.into_compile_errors());
        return out;
    }
    expand::expand(&func, &options, &handler)
}
