//! The options of `#[handler(...)]`, kept with their tokens for spans.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{LitInt, LitStr};

use crate::attr::{duplicate, unknown, value, Value};
use crate::ctxt::Ctxt;
use crate::symbol::*;

/// `durable = ...` as written.
pub(crate) enum DurableOpt {
    Flag(bool),
    Named(LitStr),
}

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) topic: Option<LitStr>,
    pub(crate) group: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) retries: Option<(u32, LitInt)>,
    pub(crate) backoff: Option<LitStr>,
    pub(crate) timeout: Option<LitStr>,
    pub(crate) concurrency: Option<(u32, LitInt)>,
    pub(crate) ordered: Option<(bool, Span)>,
    pub(crate) durable: Option<DurableOpt>,
    pub(crate) start: Option<LitStr>,
    pub(crate) dead_letter: Option<LitStr>,
}

pub(crate) fn parse(cx: &Ctxt, args: TokenStream) -> Options {
    let mut o = Options::default();
    let parser = syn::meta::parser(|meta| {
        let v = value(&meta)?;
        let is = |name: &str| meta.path.is_ident(name);
        let put = |seen: bool, name: &str| {
            if seen {
                duplicate(cx, &meta, name);
            }
            !seen
        };
        if is(TOPIC) {
            if put(o.topic.is_some(), TOPIC) {
                o.topic = v.into_str(
                    cx,
                    TOPIC,
                    "a string literal, e.g. topic = \"orders.created\"",
                );
            }
        } else if is(GROUP) {
            if put(o.group.is_some(), GROUP) {
                o.group = v.into_str(cx, GROUP, "a string literal, e.g. group = \"inventory\"");
            }
        } else if is(NAME) {
            if put(o.name.is_some(), NAME) {
                o.name = v.into_str(cx, NAME, "a string literal, e.g. name = \"reserve_stock\"");
            }
        } else if is(RETRIES) {
            if put(o.retries.is_some(), RETRIES) {
                o.retries = v.into_int(
                    cx,
                    RETRIES,
                    "a non-negative integer up to 4294967295, e.g. retries = 5",
                );
            }
        } else if is(BACKOFF) {
            if put(o.backoff.is_some(), BACKOFF) {
                o.backoff = v.into_str(
                    cx,
                    BACKOFF,
                    "a duration like \"200ms\" or a range like \"200ms..10s\"",
                );
            }
        } else if is(TIMEOUT) {
            if put(o.timeout.is_some(), TIMEOUT) {
                o.timeout = v.into_str(cx, TIMEOUT, "a duration like \"30s\", or \"none\"");
            }
        } else if is(CONCURRENCY) {
            if put(o.concurrency.is_some(), CONCURRENCY) {
                o.concurrency =
                    v.into_int(cx, CONCURRENCY, "a positive integer, e.g. concurrency = 8");
            }
        } else if is(ORDERED) {
            if put(o.ordered.is_some(), ORDERED) {
                o.ordered = flag(cx, ORDERED, v, meta.path.span());
            }
        } else if is(DURABLE) {
            if put(o.durable.is_some(), DURABLE) {
                o.durable = match v {
                    Value::Str(s) => Some(DurableOpt::Named(s)),
                    other => {
                        flag(cx, DURABLE, other, meta.path.span()).map(|(b, _)| DurableOpt::Flag(b))
                    }
                };
            }
        } else if is(START) {
            if put(o.start.is_some(), START) {
                o.start = v.into_str(cx, START, "\"new\" or \"all\"");
            }
        } else if is(DEAD_LETTER) {
            if put(o.dead_letter.is_some(), DEAD_LETTER) {
                o.dead_letter = v.into_str(
                    cx,
                    DEAD_LETTER,
                    "a topic, e.g. dead_letter = \"orders.failed\"",
                );
            }
        } else {
            unknown(cx, &meta, "handler", HANDLER_OPTIONS);
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        cx.syn_error(e);
    }
    o
}

fn flag(cx: &Ctxt, name: &str, v: Value, span: Span) -> Option<(bool, Span)> {
    match v {
        Value::Flag => Some((true, span)),
        Value::Bool(b) => Some((b.value, b.span())),
        Value::Str(s) => {
            cx.error_spanned_by(
                &s,
                format!("`{name}` expects `true` or `false` (or no value)"),
            );
            None
        }
        Value::Int(i) => {
            cx.error_spanned_by(
                &i,
                format!("`{name}` expects `true` or `false` (or no value)"),
            );
            None
        }
        Value::Other(e) => {
            cx.error_spanned_by(
                &e,
                format!("`{name}` expects `true` or `false` (or no value)"),
            );
            None
        }
    }
}
