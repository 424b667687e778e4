//! `#[event(...)]` on the type and on fields.

use syn::{Attribute, LitInt, LitStr};

use crate::attr::{duplicate, unknown, value};
use crate::ctxt::Ctxt;
use crate::symbol::{EVENT, EVENT_OPTIONS, FORMAT, KEY, TOPIC, UPCAST_FROM, VERSION};

/// The options on the type, each with its literal for spans.
#[derive(Default)]
pub(crate) struct TypeAttrs {
    pub(crate) topic: Option<LitStr>,
    pub(crate) version: Option<(u32, LitInt)>,
    pub(crate) format: Option<LitStr>,
    /// The event type of the previous schema version.
    pub(crate) upcast_from: Option<syn::Path>,
}

pub(crate) fn type_attrs(cx: &Ctxt, attrs: &[Attribute]) -> TypeAttrs {
    let mut out = TypeAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident(EVENT)) {
        let parsed = attr.parse_nested_meta(|meta| {
            let v = value(&meta)?;
            if meta.path.is_ident(TOPIC) {
                let lit = v.into_str(
                    cx,
                    TOPIC,
                    "a string literal, e.g. topic = \"orders.created\"",
                );
                set(cx, &meta, TOPIC, &mut out.topic, lit);
            } else if meta.path.is_ident(VERSION) {
                let lit = v.into_int::<u32>(cx, VERSION, "an integer >= 1, e.g. version = 2");
                set(cx, &meta, VERSION, &mut out.version, lit);
            } else if meta.path.is_ident(FORMAT) {
                let lit = v.into_str(cx, FORMAT, "\"json\" or \"protobuf\"");
                set(cx, &meta, FORMAT, &mut out.format, lit);
            } else if meta.path.is_ident(UPCAST_FROM) {
                let path = match v {
                    crate::attr::Value::Other(syn::Expr::Path(p)) => Some(p.path),
                    crate::attr::Value::Str(s) => {
                        cx.error_spanned_by(
                            &s,
                            format!(
                                "`upcast_from` takes a type, not a string: write `upcast_from = {}`",
                                s.value().trim()
                            ),
                        );
                        None
                    }
                    _ => {
                        cx.error_spanned_by(&meta.path, "`upcast_from` takes the event type of the previous schema version, without quotes: `upcast_from = <type of the previous version>`");
                        None
                    }
                };
                set(cx, &meta, UPCAST_FROM, &mut out.upcast_from, path);
            } else if meta.path.is_ident(KEY) {
                cx.error_spanned_by(
                    &meta.path,
                    "`key` goes on a field: `#[event(key)] order_id: String`",
                );
            } else {
                unknown(cx, &meta, "event", EVENT_OPTIONS);
            }
            Ok(())
        });
        if let Err(e) = parsed {
            cx.syn_error(e);
        }
    }
    out
}

fn set<T>(
    cx: &Ctxt,
    meta: &syn::meta::ParseNestedMeta<'_>,
    name: &str,
    slot: &mut Option<T>,
    v: Option<T>,
) {
    if slot.is_some() {
        duplicate(cx, meta, name);
    } else if v.is_some() {
        *slot = v;
    }
}

/// Whether a field is marked `#[event(key)]`; returns the attribute for spans.
pub(crate) fn field_key<'a>(cx: &Ctxt, attrs: &'a [Attribute]) -> Option<&'a Attribute> {
    let mut key = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(EVENT)) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(KEY) {
                if meta.input.peek(syn::Token![=]) {
                    return Err(meta.error("`key` takes no value: write `#[event(key)]`"));
                }
                if key.is_some() {
                    duplicate(cx, &meta, KEY);
                }
                key = Some(attr);
            } else {
                let _ = value(&meta)?;
                unknown(cx, &meta, "event field", &[KEY]);
            }
            Ok(())
        });
        if let Err(e) = parsed {
            cx.syn_error(e);
        }
    }
    key
}
