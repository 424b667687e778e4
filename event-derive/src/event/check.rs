//! Rules of `#[derive(Event)]`, one function per rule.

use super::ast::Input;
use crate::ctxt::Ctxt;
use crate::topic;

pub(crate) fn check(cx: &Ctxt, input: &Input<'_>) {
    check_shape(cx, input);
    check_generics(cx, input);
    check_topic(cx, input);
    check_version(cx, input);
    check_format(cx, input);
    check_keys(cx, input);
    check_upcast(cx, input);
}

/// Rule: only a version after the first has a previous version to upcast from.
fn check_upcast(cx: &Ctxt, input: &Input<'_>) {
    let Some(path) = &input.attrs.upcast_from else {
        return;
    };
    let version = input.attrs.version.as_ref().map_or(1, |(v, _)| *v);
    if version < 2 {
        cx.error_spanned_by(
            path,
            format!("`upcast_from` needs `version` >= 2: version {version} is the first, there is nothing older to upcast from"),
        );
    }
    if path.is_ident(&input.ident.to_string()) || path.is_ident("Self") {
        cx.error_spanned_by(path, "an event cannot upcast from itself");
    }
}

/// Rule: events are structs or enums.
fn check_shape(cx: &Ctxt, input: &Input<'_>) {
    if input.is_union {
        cx.error_spanned_by(
            input.ident,
            "`#[derive(Event)]` does not support unions; use a struct",
        );
    }
}

/// Rule: an event type has one topic and one schema, so no generics.
fn check_generics(cx: &Ctxt, input: &Input<'_>) {
    let g = &input.original.generics;
    if !g.params.is_empty() {
        cx.error_spanned_by(
            &g.params,
            "`#[derive(Event)]` does not support generic types: an event type has exactly one topic and one schema; define one concrete type per event",
        );
    }
}

/// Rule: the topic is concrete and well formed.
fn check_topic(cx: &Ctxt, input: &Input<'_>) {
    if let Some(lit) = &input.attrs.topic {
        if let Err(reason) = topic::check(&lit.value(), false) {
            cx.error_spanned_by(lit, format!("invalid topic `{}`: {reason}", lit.value()));
        }
    } else {
        let derived = topic::from_type_name(&input.ident.to_string());
        if let Err(reason) = topic::check(&derived, false) {
            cx.error_spanned_by(
                input.ident,
                format!("the topic derived from the type name, `{derived}`, is invalid ({reason}); set one with `#[event(topic = \"...\")]`"),
            );
        }
    }
}

/// Rule: schema versions start at 1.
fn check_version(cx: &Ctxt, input: &Input<'_>) {
    if let Some((0, lit)) = &input.attrs.version {
        cx.error_spanned_by(lit, "`version` must be at least 1");
    }
}

/// Rule: the format is a known codec.
fn check_format(cx: &Ctxt, input: &Input<'_>) {
    if let Some(lit) = &input.attrs.format {
        match lit.value().as_str() {
            "json" | "protobuf" => {}
            other => cx.error_spanned_by(
                lit,
                format!("unknown format `{other}`; expected \"json\" or \"protobuf\""),
            ),
        }
    }
}

/// Rule: at most one key field, only on structs, and never optional (an
/// event without a key value could not be ordered or partitioned).
fn check_keys(cx: &Ctxt, input: &Input<'_>) {
    for key in &input.keys {
        if let Some(inner) = option_inner(key.ty) {
            let inner = quote::ToTokens::to_token_stream(inner)
                .to_string()
                .replace(' ', "");
            cx.error_spanned_by(
                key.ty,
                format!("an event key cannot be optional: every event needs a key to be ordered and partitioned; make the field `{inner}`, or remove `#[event(key)]`"),
            );
        }
    }
    for extra in input.keys.iter().skip(1) {
        cx.error_spanned_by(
            extra.attr,
            "only one field can be `#[event(key)]`; an event has a single ordering key",
        );
    }
    for attr in &input.variant_keys {
        cx.error_spanned_by(
            attr,
            "`#[event(key)]` is only supported on struct fields; an enum event has no single key field",
        );
    }
}

/// `T` when `ty` is written `Option<T>` (any path ending in `Option`).
fn option_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first()? {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(input: syn::DeriveInput) -> Vec<String> {
        let cx = Ctxt::default();
        let parsed = Input::from_syn(&cx, &input);
        check(&cx, &parsed);
        cx.into_messages()
    }

    #[test]
    fn optional_key_names_the_plain_type() {
        let e = errors(syn::parse_quote! {
            struct OrderCreated { #[event(key)] id: Option<String> }
        });
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("make the field `String`"), "{e:?}");
    }

    #[test]
    fn upcast_from_string_suggests_its_content() {
        let e = errors(syn::parse_quote! {
            #[event(version = 2, upcast_from = "OrderCreatedV1")]
            struct OrderCreated { id: u64 }
        });
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("write `upcast_from = OrderCreatedV1`"),
            "{e:?}"
        );
    }
}
