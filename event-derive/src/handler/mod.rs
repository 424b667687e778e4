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
    let handler = ast::Handler::from_syn(&func);
    if handler.has_bare_state() {
        // `State` without its type: the compiler's own error on the user's
        // token ("missing generics for struct `State`", with the fix) is
        // exact, and any error of ours would come on top of it.
        return item;
    }
    let cx = Ctxt::default();
    let options = attr::parse(&cx, args);
    check::check(&cx, &options, &handler);
    if cx.has_errors() {
        let mut out = func.to_token_stream();
        out.extend(cx.into_compile_errors());
        return out;
    }
    expand::expand(&func, &options, &handler)
}
