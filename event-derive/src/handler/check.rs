//! Rules of `#[handler]`, one function per rule, and the conversions of
//! option values shared with `expand`.

use std::time::Duration;

use syn::{LitStr, ReturnType, Type};

use super::ast::Handler;
use super::attr::{DurableOpt, Options};
use crate::ctxt::Ctxt;
use crate::{duration, topic};

/// Longest default backoff cap, and the cap when only an initial delay is written.
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Highest `concurrency` accepted.
pub(crate) const MAX_CONCURRENCY: u32 = 65_536;

pub(crate) fn check(cx: &Ctxt, o: &Options, h: &Handler<'_>) {
    check_signature(cx, h);
    check_event_param(cx, h);
    check_topic(cx, o, h);
    check_names(cx, o);
    check_durations(cx, o);
    check_concurrency(cx, o);
    check_start(cx, o);
    check_dead_letter(cx, o);
}

/// Rule: a handler is a free, non-generic `async fn`.
fn check_signature(cx: &Ctxt, h: &Handler<'_>) {
    let sig = &h.func.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "`#[handler]` functions must be `async`: write `async fn`",
        );
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "a handler cannot be `const`");
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
    for ty in &h.extractors {
        if let Type::ImplTrait(_) = ty {
            cx.error_spanned_by(
                ty,
                "handler parameters need concrete types, not `impl Trait`",
            );
        }
    }
}

/// Rule: the first parameter is the event, taken by value.
fn check_event_param(cx: &Ctxt, h: &Handler<'_>) {
    let Some(event) = &h.event else {
        if h.receivers.is_empty() {
            cx.error_at(
                h.func.sig.paren_token.span.join(),
                "a handler takes the event as its first parameter, e.g. `async fn on_order(evt: OrderCreated)`",
            );
        }
        return;
    };
    match event.ty {
        Type::Reference(r) => cx.error_spanned_by(
            r,
            "the event is taken by value: write `evt: OrderCreated`, not a reference",
        ),
        Type::ImplTrait(t) => {
            cx.error_spanned_by(t, "the event parameter needs a concrete event type")
        }
        _ => {}
    }
}

/// Rule: the topic is well formed; wildcards only with `RawEvent`; a
/// `RawEvent` handler names its topic.
fn check_topic(cx: &Ctxt, o: &Options, h: &Handler<'_>) {
    let Some(event) = &h.event else { return };
    match &o.topic {
        None if event.raw => cx.error_spanned_by(
            event.ty,
            "a `RawEvent` handler must name its topic: `#[handler(topic = \"orders.>\")]`",
        ),
        None => {}
        Some(lit) => {
            let value = lit.value();
            let wildcard = value.split('.').any(|t| t == "*" || t == ">");
            if wildcard && !event.raw && topic::check(&value, true).is_ok() {
                cx.error_spanned_by(
                    lit,
                    format!("wildcard topic `{value}` needs a `RawEvent` parameter; a typed handler receives exactly its event type's topic"),
                );
            } else if let Err(reason) = topic::check(&value, event.raw) {
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

/// Rule: the dead-letter destination is a concrete topic.
fn check_dead_letter(cx: &Ctxt, o: &Options) {
    if let Some(lit) = &o.dead_letter {
        if let Err(reason) = topic::check(&lit.value(), false) {
            cx.error_spanned_by(
                lit,
                format!("invalid dead-letter topic `{}`: {reason}", lit.value()),
            );
        }
    }
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
            let initial = duration::parse(&v)?;
            Ok((initial, initial.max(DEFAULT_BACKOFF_MAX)))
        }
        Some((a, b)) => {
            let (initial, max) = (duration::parse(a)?, duration::parse(b)?);
            if max < initial {
                return Err(format!(
                    "backoff range `{v}` must increase: the cap is shorter than the first delay"
                ));
            }
            Ok((initial, max))
        }
    }
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
