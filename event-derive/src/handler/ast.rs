//! The intermediate form of a `#[handler]` function.

use syn::{FnArg, ItemFn, Type};

use crate::symbol::RAW_EVENT;

pub(crate) struct Handler<'a> {
    pub(crate) func: &'a ItemFn,
    /// The first parameter, when there is one and it is typed.
    pub(crate) event: Option<EventParam<'a>>,
    /// The remaining parameters' types (extractors).
    pub(crate) extractors: Vec<&'a Type>,
    /// `self` parameters (an error).
    pub(crate) receivers: Vec<&'a syn::Receiver>,
}

pub(crate) struct EventParam<'a> {
    pub(crate) ty: &'a Type,
    /// The parameter is `RawEvent`: no decoding, wildcard topics allowed.
    pub(crate) raw: bool,
}

impl<'a> Handler<'a> {
    pub(crate) fn from_syn(func: &'a ItemFn) -> Self {
        let mut typed = Vec::new();
        let mut receivers = Vec::new();
        for arg in &func.sig.inputs {
            match arg {
                FnArg::Typed(pt) => typed.push(&*pt.ty),
                FnArg::Receiver(r) => receivers.push(r),
            }
        }
        let mut params = typed.into_iter();
        let event = params.next().map(|ty| EventParam {
            ty,
            raw: is_raw_event(ty),
        });
        Handler {
            func,
            event,
            extractors: params.collect(),
            receivers,
        }
    }
}

fn is_raw_event(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == RAW_EVENT && s.arguments.is_none()),
        _ => false,
    }
}
