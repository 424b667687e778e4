//! The intermediate form of a type deriving `Event`.

use proc_macro2::Span;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, Member, Type};

use super::attr::{self, TypeAttrs};
use crate::ctxt::Ctxt;

pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: TypeAttrs,
    /// Every field marked `#[event(key)]` (more than one is an error).
    pub(crate) keys: Vec<KeyField<'a>>,
    /// `#[event(key)]` found on enum variant fields (an error).
    pub(crate) variant_keys: Vec<&'a Attribute>,
    pub(crate) is_union: bool,
}

pub(crate) struct KeyField<'a> {
    pub(crate) member: Member,
    pub(crate) ty: &'a Type,
    pub(crate) attr: &'a Attribute,
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = attr::type_attrs(cx, &input.attrs);
        let mut keys = Vec::new();
        let mut variant_keys = Vec::new();
        match &input.data {
            Data::Struct(s) => keys = key_fields(cx, &s.fields),
            Data::Enum(e) => {
                for v in &e.variants {
                    variant_keys.extend(key_fields(cx, &v.fields).into_iter().map(|k| k.attr));
                }
            }
            Data::Union(_) => {}
        }
        Input {
            original: input,
            ident: &input.ident,
            attrs,
            keys,
            variant_keys,
            is_union: matches!(input.data, Data::Union(_)),
        }
    }
}

fn key_fields<'a>(cx: &Ctxt, fields: &'a Fields) -> Vec<KeyField<'a>> {
    fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let attr = attr::field_key(cx, &f.attrs)?;
            let member = match &f.ident {
                Some(id) => Member::Named(id.clone()),
                None => Member::Unnamed(syn::Index {
                    index: i as u32,
                    span: Span::call_site(),
                }),
            };
            Some(KeyField {
                member,
                ty: &f.ty,
                attr,
            })
        })
        .collect()
}
