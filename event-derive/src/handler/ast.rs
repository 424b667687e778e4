//! The intermediate form of a `#[handler]` function.

use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, Type};

use crate::symbol::{CONTEXT, RAW_EVENT, STATE};

pub(crate) struct Handler<'a> {
    pub(crate) func: &'a ItemFn,
    /// The typed parameters, in order.
    pub(crate) params: Vec<Param<'a>>,
    /// `self` parameters (an error).
    pub(crate) receivers: Vec<&'a syn::Receiver>,
}

pub(crate) struct Param<'a> {
    pub(crate) pat: &'a Pat,
    pub(crate) ty: &'a Type,
    pub(crate) kind: ParamKind,
}

/// What a parameter's type looks like as written; aliases are only known
/// to the type checker, which the generated code leaves the final word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// `Context` (or `&Context`).
    Context,
    /// `State<T>`, or `State` without its type (an error).
    State,
    /// `RawEvent` (or `&RawEvent`).
    Raw,
    /// Anything else: an event type, or an unknown extractor.
    Other,
}

impl<'a> Handler<'a> {
    pub(crate) fn from_syn(func: &'a ItemFn) -> Self {
        let mut params = Vec::new();
        let mut receivers = Vec::new();
        for arg in &func.sig.inputs {
            match arg {
                FnArg::Typed(pt) => params.push(Param {
                    pat: &pt.pat,
                    ty: &pt.ty,
                    kind: kind_of(&pt.ty),
                }),
                FnArg::Receiver(r) => receivers.push(r),
            }
        }
        Handler {
            func,
            params,
            receivers,
        }
    }

    /// The first parameter: the event.
    pub(crate) fn event(&self) -> Option<&Param<'a>> {
        self.params.first()
    }

    /// The parameters after the event: extractors.
    pub(crate) fn extractors(&self) -> &[Param<'a>] {
        self.params.get(1..).unwrap_or(&[])
    }

    /// Whether a parameter is written `State` without its type.
    pub(crate) fn has_bare_state(&self) -> bool {
        self.params.iter().any(|p| {
            p.kind == ParamKind::State
                && matches!(p.ty, Type::Path(t) if t.path.segments.last().is_some_and(|s| s.arguments.is_none()))
        })
    }

    /// Whether the event parameter is written `RawEvent`.
    pub(crate) fn is_raw(&self) -> bool {
        self.event().is_some_and(|p| p.kind == ParamKind::Raw)
    }
}

impl Param<'_> {
    /// The parameter's name as written (`evt`), or `evt` for a pattern.
    pub(crate) fn name(&self) -> String {
        match self.pat {
            Pat::Ident(i) => i.ident.to_string(),
            other => tokens(other),
        }
    }
}

/// Tokens as compact text for messages (`Arc<OrderCreated>`).
pub(crate) fn tokens<T: quote::ToTokens>(t: &T) -> String {
    let s = t.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" ,", ",")
        .replace("& ", "&")
}

fn kind_of(ty: &Type) -> ParamKind {
    let ty = match ty {
        Type::Reference(r) => &*r.elem,
        Type::Paren(p) => &*p.elem,
        other => other,
    };
    let Type::Path(p) = ty else {
        return ParamKind::Other;
    };
    let Some(last) = p.path.segments.last() else {
        return ParamKind::Other;
    };
    match &last.arguments {
        PathArguments::None if last.ident == RAW_EVENT => ParamKind::Raw,
        PathArguments::None if last.ident == CONTEXT => ParamKind::Context,
        _ if last.ident == STATE => ParamKind::State,
        _ => ParamKind::Other,
    }
}

/// `(Wrapper, T)` when `ty` is written `Wrapper<T>` with a one-type
/// wrapper that cannot be an event (`Arc`, `Box`, `Option`, ...).
pub(crate) fn wrapper(ty: &Type) -> Option<(String, &Type)> {
    const WRAPPERS: &[&str] = &["Arc", "Rc", "Box", "Cow", "Option", "Vec"];
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let name = last.ident.to_string();
    if !WRAPPERS.contains(&name.as_str()) {
        return None;
    }
    let PathArguments::AngleBracketed(a) = &last.arguments else {
        return None;
    };
    a.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(t) => Some((name.clone(), t)),
        _ => None,
    })
}
