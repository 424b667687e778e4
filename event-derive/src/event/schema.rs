//! The schema description `#[derive(Event)]` records for the schema lock:
//! every field's wire name and type, and for protobuf its tag and kind.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Data, DeriveInput, Fields, LitStr, Meta};

/// One field as `(name, type, tag, protobuf kind)`.
struct Field {
    name: String,
    ty: String,
    tag: Option<u32>,
    kind: Option<String>,
}

/// `&[FieldDescriptor { .. }, ..]` for the registry descriptor.
pub(crate) fn fields(input: &DeriveInput) -> TokenStream {
    let fields = match &input.data {
        Data::Struct(s) => describe(&s.fields),
        // An enum's variants are its schema: each variant with its fields.
        Data::Enum(e) => e
            .variants
            .iter()
            .flat_map(|v| {
                let variant = serde_rename(&v.attrs).unwrap_or_else(|| v.ident.to_string());
                let inner = describe(&v.fields);
                if inner.is_empty() {
                    vec![Field {
                        name: variant,
                        ty: "variant".into(),
                        tag: None,
                        kind: None,
                    }]
                } else {
                    inner
                        .into_iter()
                        .map(|f| Field {
                            name: format!("{variant}.{}", f.name),
                            ..f
                        })
                        .collect()
                }
            })
            .collect(),
        Data::Union(_) => Vec::new(),
    };
    let items = fields.iter().map(|f| {
        let (name, ty) = (&f.name, &f.ty);
        let tag = match f.tag {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let kind = match &f.kind {
            Some(k) => quote!(::core::option::Option::Some(#k)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            ::eventwire::__private::FieldDescriptor { name: #name, ty: #ty, tag: #tag, protobuf: #kind }
        }
    });
    quote!(&[#(#items),*])
}

fn describe(fields: &Fields) -> Vec<Field> {
    fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !serde_skipped(&f.attrs))
        .map(|(i, f)| {
            let name = serde_rename(&f.attrs)
                .or_else(|| {
                    f.ident
                        .as_ref()
                        .map(|id| id.to_string().trim_start_matches("r#").to_owned())
                })
                .unwrap_or_else(|| i.to_string());
            let (tag, kind) = prost(&f.attrs);
            Field {
                name,
                ty: f.ty.to_token_stream().to_string().replace(' ', ""),
                tag,
                kind,
            }
        })
        .collect()
}

/// `#[serde(rename = "x")]`: the name on the wire.
fn serde_rename(attrs: &[Attribute]) -> Option<String> {
    let mut out = None;
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = a.parse_nested_meta(|m| {
            if m.path.is_ident("rename") && m.input.peek(syn::Token![=]) {
                let lit: LitStr = m.value()?.parse()?;
                out = Some(lit.value());
            } else if m.input.peek(syn::Token![=]) {
                let _: syn::Expr = m.value()?.parse()?;
            } else if m.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in m.input);
                let _: TokenStream = content.parse()?;
            }
            Ok(())
        });
    }
    out
}

/// `#[serde(skip)]`: not on the wire.
fn serde_skipped(attrs: &[Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("serde")).any(|a| {
        matches!(&a.meta, Meta::List(l) if l.tokens.to_string().split(',').any(|t| t.trim() == "skip"))
    })
}

/// `#[prost(string, repeated, tag = "3")]` → (3, "string repeated").
fn prost(attrs: &[Attribute]) -> (Option<u32>, Option<String>) {
    let Some(a) = attrs.iter().find(|a| a.path().is_ident("prost")) else {
        return (None, None);
    };
    let Meta::List(list) = &a.meta else {
        return (None, None);
    };
    let mut tag = None;
    let mut kind = Vec::new();
    for part in list.tokens.to_string().split(',') {
        let part = part.trim();
        match part.split_once('=') {
            Some((k, v)) if k.trim() == "tag" => {
                tag = v.trim().trim_matches('"').parse().ok();
            }
            Some(_) => kind.push(part.replace(' ', "")),
            None => kind.push(part.to_owned()),
        }
    }
    (tag, Some(kind.join(" ")))
}
