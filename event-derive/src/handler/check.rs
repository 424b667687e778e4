//! Rules of `#[handler]`, one function per rule, and the conversions of
//! option values shared with `expand`.

use std::time::Duration;

use syn::{GenericArgument, LitStr, PathArguments, ReturnType, Type, TypeParamBound};

use super::ast::{tokens, wrapper, Handler, Param, ParamKind};
use super::attr::{DurableOpt, Options};
use crate::ctxt::Ctxt;
use crate::{duration, topic};

/// Longest default backoff cap, and the cap when only an initial delay is written.
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Highest `concurrency` accepted.
pub(crate) const MAX_CONCURRENCY: u32 = 65_536;

pub(crate) fn check(cx: &Ctxt, o: &Options, h: &Handler<'_>) {
    check_signature(cx, h);
    if check_order(cx, h) {
        check_event_param(cx, h);
        check_extractors(cx, h);
    }
    check_return(cx, h);
    check_topic(cx, o, h);
    check_names(cx, o);
    check_durations(cx, o);
    check_concurrency(cx, o);
    check_start(cx, o);
    check_dead_letter(cx, o, h);
}

/// Rule: a handler is a free, non-generic `async fn`.
fn check_signature(cx: &Ctxt, h: &Handler<'_>) {
    let sig = &h.func.sig;
    if sig.asyncness.is_none() {
        let message = match future_output(h) {
            Some(output) => format!(
                "`#[handler]` functions must be `async`: write `async fn {}(...) -> {output}` instead of returning `impl Future`",
                sig.ident
            ),
            None => "`#[handler]` functions must be `async`: write `async fn`".to_owned(),
        };
        cx.error_spanned_by(sig.fn_token, message);
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "a handler cannot be `const`");
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(
            u,
            "a handler cannot be `unsafe`: the runtime calls it with no way to uphold its safety contract; remove `unsafe` and use `unsafe` blocks inside",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a handler cannot have an `extern` ABI");
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics.params,
            "a handler cannot be generic: the registry needs one concrete function per handler",
        );
    }
    for r in &h.receivers {
        cx.error_spanned_by(
            r,
            "`#[handler]` goes on a free function, not a method: take the event as the first parameter",
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "a handler cannot be variadic");
    }
}

/// `X` when the return type is written `impl Future<Output = X>`.
fn future_output(h: &Handler<'_>) -> Option<String> {
    let Type::ImplTrait(t) = return_type(h)? else {
        return None;
    };
    t.bounds.iter().find_map(|b| {
        let TypeParamBound::Trait(t) = b else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(a) = &last.arguments else {
            return None;
        };
        a.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(at) if at.ident == "Output" => Some(tokens(&at.ty)),
            _ => None,
        })
    })
}

/// Rule: the event comes first, the extractors after it. Returns whether
/// the parameters are in that order (the other parameter rules assume it).
fn check_order(cx: &Ctxt, h: &Handler<'_>) -> bool {
    let Some(first) = h.event() else {
        if h.receivers.is_empty() {
            cx.error_at(
                h.func.sig.paren_token.span.join(),
                "a handler takes the event as its first parameter, e.g. `async fn on_order(evt: OrderCreated)`",
            );
        }
        return false;
    };
    if !matches!(first.kind, ParamKind::Context | ParamKind::State) {
        return true;
    }
    let is_extractor = |p: &&Param<'_>| matches!(p.kind, ParamKind::Context | ParamKind::State);
    let events: Vec<&Param<'_>> = h.params.iter().filter(|p| !is_extractor(p)).collect();
    let message = match events.as_slice() {
        [] => format!(
            "a handler takes the event as its first parameter, before the extractors, e.g. `async fn {}(evt: OrderCreated, {})`",
            h.func.sig.ident,
            param_list(h.params.iter())
        ),
        _ => format!(
            "the event comes first, the extractors after it: write `async fn {}({})`",
            h.func.sig.ident,
            param_list(events.iter().copied().chain(h.params.iter().filter(is_extractor)))
        ),
    };
    cx.error_spanned_by(first.ty, message);
    false
}

fn param_list<'p, 'a: 'p>(params: impl Iterator<Item = &'p Param<'a>>) -> String {
    params
        .map(|p| format!("{}: {}", p.name(), tokens(p.ty)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rule: the event is taken by value, as its own type.
fn check_event_param(cx: &Ctxt, h: &Handler<'_>) {
    let Some(event) = h.event() else { return };
    let name = event.name();
    match event.ty {
        Type::Reference(r) => cx.error_spanned_by(
            r,
            format!(
                "the event is taken by value: write `{name}: {}`, not `{}`",
                tokens(&r.elem),
                tokens(r)
            ),
        ),
        Type::ImplTrait(t) => cx.error_spanned_by(
            t,
            "the event parameter needs a concrete event type, e.g. `evt: OrderCreated`",
        ),
        ty => {
            if let Some((outer, inner)) = wrapper(ty) {
                let why = match outer.as_str() {
                    "Option" => "a handler always receives its event",
                    "Vec" => "a handler receives one event per call",
                    _ => "the event is taken by value",
                };
                cx.error_spanned_by(
                    ty,
                    format!(
                        "{why}: write `{name}: {}`, not `{}`",
                        tokens(inner),
                        tokens(ty)
                    ),
                );
            }
        }
    }
}

/// Rule: extractors are taken by value, with their type written in full.
fn check_extractors(cx: &Ctxt, h: &Handler<'_>) {
    for p in h.extractors() {
        let name = p.name();
        match p.ty {
            Type::Reference(r) => cx.error_spanned_by(
                r,
                format!(
                    "extractors are taken by value: write `{name}: {}`, not `{}`",
                    tokens(&r.elem),
                    tokens(r)
                ),
            ),
            Type::ImplTrait(t) => cx.error_spanned_by(
                t,
                "handler parameters need concrete types, not `impl Trait`",
            ),
            Type::Path(_) if p.kind == ParamKind::Raw => cx.error_spanned_by(
                p.ty,
                "`RawEvent` is the event itself: take it as the first parameter, in place of a typed event",
            ),
            _ => {}
        }
    }
}

/// Rule: the error type of a `Result` converts into `HandlerError`. Caught
/// here for the usual mistakes, so the message names the fix; other types
/// are left to the `IntoHandlerResult` bound.
fn check_return(cx: &Ctxt, h: &Handler<'_>) {
    let Some(err) = error_type(h) else { return };
    if let Some(message) = error_type_problem(err) {
        cx.error_spanned_by(err, message);
    }
}

/// `(T, E)` when the return type is written `Result<T, E>`.
pub(crate) fn result_types<'a>(h: &Handler<'a>) -> Option<(&'a Type, &'a Type)> {
    let Type::Path(p) = return_type(h)? else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match (args.args.first()?, args.args.iter().nth(1)?) {
        (GenericArgument::Type(ok), GenericArgument::Type(err)) if args.args.len() == 2 => {
            Some((ok, err))
        }
        _ => None,
    }
}

/// `E` when the return type is written `Result<_, E>`.
fn error_type<'a>(h: &Handler<'a>) -> Option<&'a Type> {
    let Type::Path(p) = return_type(h)? else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().nth(1)? {
        GenericArgument::Type(err) => Some(err),
        _ => None,
    }
}

/// Whether the return type is written `Result<(), Box<dyn ... + Send + Sync>>`,
/// converted by `HandlerError::retryable` since a boxed error has no `From`.
pub(crate) fn returns_boxed_error(h: &Handler<'_>) -> bool {
    error_type(h).is_some_and(|e| dyn_bounds(e).is_some() && error_type_problem(e).is_none())
}

fn dyn_bounds(err: &Type) -> Option<&syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>> {
    let Type::Path(p) = err else { return None };
    let s = p.path.segments.last()?;
    if s.ident != "Box" {
        return None;
    }
    let PathArguments::AngleBracketed(a) = &s.arguments else {
        return None;
    };
    a.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(Type::TraitObject(t)) => Some(&t.bounds),
        _ => None,
    })
}

/// Why a written error type cannot be a handler error, if it visibly cannot.
fn error_type_problem(err: &Type) -> Option<String> {
    let text = tokens(err);
    let is_str = match err {
        Type::Reference(r) => matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")),
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "String"),
        _ => false,
    };
    if is_str {
        return Some(format!(
            "`{text}` is not an error type: return `Result<(), HandlerError>` and write `HandlerError::msg(...)` for a message (or `HandlerError::permanent_msg(...)` when retrying cannot help)"
        ));
    }
    let dyn_bounds = dyn_bounds(err)?;
    let has = |name: &str| {
        dyn_bounds.iter().any(|b| match b {
            TypeParamBound::Trait(t) => t.path.segments.last().is_some_and(|s| s.ident == name),
            _ => false,
        })
    };
    if has("Send") && has("Sync") {
        return None;
    }
    Some(format!(
        "`{text}` cannot be a handler error: handlers run on other threads, so their errors are `Send + Sync`; write `Box<dyn std::error::Error + Send + Sync>`, or return `Result<(), HandlerError>` (`HandlerError::msg(...)` for a message)"
    ))
}

/// Rule: the topic is well formed; wildcards only with `RawEvent`; a
/// `RawEvent` handler names its topic.
fn check_topic(cx: &Ctxt, o: &Options, h: &Handler<'_>) {
    let Some(event) = h.event() else { return };
    let raw = h.is_raw();
    match &o.topic {
        None if raw => cx.error_spanned_by(
            event.ty,
            "a `RawEvent` handler must name its topic: `#[handler(topic = \"orders.>\")]`",
        ),
        None => {}
        Some(lit) => {
            let value = lit.value();
            let wildcard = value.split('.').any(|t| t == "*" || t == ">");
            if wildcard && !raw && topic::check(&value, true).is_ok() {
                cx.error_spanned_by(
                    lit,
                    format!("wildcard topic `{value}` needs a `RawEvent` parameter (written `RawEvent`, not an alias); a typed handler receives exactly its event type's topic"),
                );
            } else if let Err(reason) = topic::check(&value, raw) {
                cx.error_spanned_by(lit, format!("invalid topic `{value}`: {reason}"));
            }
        }
    }
}

/// Rule: group, handler and durable names are single subject tokens.
fn check_names(cx: &Ctxt, o: &Options) {
    let durable = match &o.durable {
        Some(DurableOpt::Named(l)) => Some(("durable", l)),
        _ => None,
    };
    let names = [("group", o.group.as_ref()), ("name", o.name.as_ref())]
        .into_iter()
        .filter_map(|(n, l)| l.map(|l| (n, l)))
        .chain(durable);
    for (what, lit) in names {
        if let Err(reason) = topic::check_name(&lit.value()) {
            cx.error_spanned_by(lit, format!("invalid {what} `{}`: {reason}", lit.value()));
        }
    }
}

/// Rule: durations parse; a backoff range is increasing; timeouts are positive.
fn check_durations(cx: &Ctxt, o: &Options) {
    if let Some(lit) = &o.timeout {
        if let Err(e) = timeout(lit) {
            cx.error_spanned_by(lit, e);
        }
    }
    if let Some(lit) = &o.backoff {
        if let Err(e) = backoff(lit) {
            cx.error_spanned_by(lit, e);
        }
    }
}

/// Rule: concurrency is at least 1.
fn check_concurrency(cx: &Ctxt, o: &Options) {
    if let Some((n, lit)) = &o.concurrency {
        if *n == 0 || *n > MAX_CONCURRENCY {
            cx.error_spanned_by(
                lit,
                format!("`concurrency` must be between 1 and {MAX_CONCURRENCY}"),
            );
        }
    }
}

/// Rule: `start` is "new" or "all".
fn check_start(cx: &Ctxt, o: &Options) {
    if let Some(lit) = &o.start {
        if start_all(lit).is_err() {
            cx.error_spanned_by(
                lit,
                format!(
                    "unknown start position `{}`; expected \"new\" or \"all\"",
                    lit.value()
                ),
            );
        }
    }
}

/// Rule: the dead-letter destination is a concrete topic, and not one this
/// handler consumes (a failed event would come back to it). When the topic
/// is the event type's, `expand` checks it at compile time instead.
fn check_dead_letter(cx: &Ctxt, o: &Options, h: &Handler<'_>) {
    let Some(lit) = &o.dead_letter else { return };
    let dl = lit.value();
    if let Err(reason) = topic::check(&dl, false) {
        cx.error_spanned_by(lit, format!("invalid dead-letter topic `{dl}`: {reason}"));
        return;
    }
    let Some(own) = &o.topic else { return };
    let own = own.value();
    if topic::matches(&own, &dl) && (h.is_raw() || own == dl) {
        let (consumed, default) = if own == dl {
            (
                "is the topic this handler consumes".to_owned(),
                format!("eventwire.dlq.{dl}"),
            )
        } else {
            (
                format!("matches this handler's topic `{own}`"),
                "eventwire.dlq.<topic of the event>".to_owned(),
            )
        };
        cx.error_spanned_by(lit, own_dead_letter_message(&dl, &consumed, &default));
    }
}

/// The message of a dead-letter topic that loops back to its handler.
pub(crate) fn own_dead_letter_message(dl: &str, consumed: &str, default: &str) -> String {
    format!("dead-letter topic `{dl}` {consumed}: failed events would be delivered to it again; name another topic, or remove `dead_letter` to use `{default}`")
}

/// `"30s"` → `Some(30s)`, `"none"` → `None`.
pub(crate) fn timeout(lit: &LitStr) -> Result<Option<Duration>, String> {
    let v = lit.value();
    if v == "none" {
        return Ok(None);
    }
    let d = duration::parse(&v)?;
    if d.is_zero() {
        return Err("`timeout` must be positive; write \"none\" for no timeout".into());
    }
    Ok(Some(d))
}

/// `"200ms"` → (200ms, max(30s, 200ms)); `"200ms..10s"` → (200ms, 10s).
pub(crate) fn backoff(lit: &LitStr) -> Result<(Duration, Duration), String> {
    let v = lit.value();
    match v.split_once("..") {
        None => {
            let initial = positive_backoff(duration::parse(&v)?)?;
            Ok((initial, initial.max(DEFAULT_BACKOFF_MAX)))
        }
        Some((a, b)) => {
            let (initial, max) = (duration::parse(a)?, duration::parse(b)?);
            let initial = positive_backoff(initial)?;
            if max < initial {
                return Err(format!(
                    "backoff range `{v}` must increase: the cap is shorter than the first delay"
                ));
            }
            Ok((initial, max))
        }
    }
}

/// A zero first delay would retry at once, forever zero after doubling.
fn positive_backoff(initial: Duration) -> Result<Duration, String> {
    if initial.is_zero() {
        return Err("`backoff` must be positive: a zero delay retries at once and doubling keeps it zero; write e.g. \"100ms\", or remove `backoff` for the default (100ms doubling up to 30s)".into());
    }
    Ok(initial)
}

/// `"all"` → true, `"new"` → false.
pub(crate) fn start_all(lit: &LitStr) -> Result<bool, ()> {
    match lit.value().as_str() {
        "all" => Ok(true),
        "new" => Ok(false),
        _ => Err(()),
    }
}

/// The written return type, if any.
pub(crate) fn return_type<'a>(h: &Handler<'a>) -> Option<&'a Type> {
    match &h.func.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::handler::attr;

    /// The messages of every error of one `#[handler(args)] item`.
    fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        let func: syn::ItemFn = syn::parse2(item).unwrap();
        let cx = Ctxt::default();
        let options = attr::parse(&cx, args);
        let handler = Handler::from_syn(&func);
        check(&cx, &options, &handler);
        cx.into_messages()
    }

    fn one_error(args: TokenStream, item: TokenStream) -> String {
        let e = errors(args, item);
        assert_eq!(e.len(), 1, "{e:?}");
        e.into_iter().next().unwrap()
    }

    #[test]
    fn valid_handlers_pass() {
        assert!(errors(
            quote!(
                topic = "orders.>",
                dead_letter = "audit.failed",
                backoff = "1s..1d"
            ),
            quote!(
                async fn f(evt: RawEvent, ctx: Context) {}
            )
        )
        .is_empty());
        assert!(errors(
            quote!(),
            quote!(
                async fn f(
                    evt: OrderCreated,
                    State(db): State<Db>,
                ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                }
            )
        )
        .is_empty());
    }

    #[test]
    fn unsafe_is_refused() {
        let e = one_error(
            quote!(),
            quote!(
                async unsafe fn f(evt: OrderCreated) {}
            ),
        );
        assert!(e.contains("cannot be `unsafe`"), "{e}");
    }

    #[test]
    fn by_reference_names_the_users_type() {
        let e = one_error(
            quote!(),
            quote!(
                async fn f(order: &OrderPaid) {}
            ),
        );
        assert!(
            e.contains("write `order: OrderPaid`, not `&OrderPaid`"),
            "{e}"
        );
        let e = one_error(
            quote!(),
            quote!(
                async fn f(order: Arc<OrderPaid>) {}
            ),
        );
        assert!(
            e.contains("write `order: OrderPaid`, not `Arc<OrderPaid>`"),
            "{e}"
        );
    }

    #[test]
    fn raw_event_by_reference_is_one_error() {
        let e = one_error(
            quote!(topic = "orders.>"),
            quote!(
                async fn f(evt: &RawEvent) {}
            ),
        );
        assert!(e.contains("write `evt: RawEvent`"), "{e}");
    }

    #[test]
    fn extractors_by_value_and_after_the_event() {
        let e = one_error(
            quote!(),
            quote!(
                async fn f(evt: OrderCreated, ctx: &Context) {}
            ),
        );
        assert!(e.contains("write `ctx: Context`, not `&Context`"), "{e}");
        let e = one_error(
            quote!(),
            quote!(
                async fn f(ctx: Context, evt: OrderCreated) {}
            ),
        );
        assert!(
            e.contains("write `async fn f(evt: OrderCreated, ctx: Context)`"),
            "{e}"
        );
    }

    #[test]
    fn error_types_that_cannot_convert() {
        let e = one_error(
            quote!(),
            quote!(
                async fn f(evt: OrderCreated) -> Result<(), String> {}
            ),
        );
        assert!(e.contains("HandlerError::msg"), "{e}");
        let e = one_error(
            quote!(),
            quote!(
                async fn f(evt: OrderCreated) -> Result<(), Box<dyn Error>> {}
            ),
        );
        assert!(e.contains("Send + Sync"), "{e}");
    }

    #[test]
    fn impl_future_names_the_async_form() {
        let e = one_error(
            quote!(),
            quote!(
                fn f(evt: OrderCreated) -> impl Future<Output = ()> {
                    async {}
                }
            ),
        );
        assert!(e.contains("write `async fn f(...) -> ()`"), "{e}");
    }

    #[test]
    fn zero_backoff_is_refused() {
        for b in ["0ms", "0s..10s"] {
            let e = one_error(
                quote!(backoff = #b),
                quote!(
                    async fn f(evt: OrderCreated) {}
                ),
            );
            assert!(e.contains("`backoff` must be positive"), "{e}");
        }
    }

    #[test]
    fn dead_letter_cannot_loop_back() {
        let e = one_error(
            quote!(topic = "orders.created", dead_letter = "orders.created"),
            quote!(
                async fn f(evt: OrderCreated) {}
            ),
        );
        assert!(e.contains("is the topic this handler consumes"), "{e}");
        let e = one_error(
            quote!(topic = "orders.>", dead_letter = "orders.failed"),
            quote!(
                async fn f(evt: RawEvent) {}
            ),
        );
        assert!(e.contains("matches this handler's topic `orders.>`"), "{e}");
    }

    #[test]
    fn out_of_range_integers_say_so() {
        let e = one_error(
            quote!(retries = 5000000000),
            quote!(
                async fn f(evt: OrderCreated) {}
            ),
        );
        assert!(e.contains("out of range"), "{e}");
    }
}
