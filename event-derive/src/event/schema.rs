//! The schema description `#[derive(Event)]` records for the schema lock:
//! every key serde writes for a JSON event, every field with its tag and kind
//! for a protobuf event.
//!
//! The `#[serde]` attributes are read by `serde_derive_internals`, the parser
//! serde's own derive is built on, so the names are the ones serde writes:
//! `rename` (also `rename(serialize = ..)`), `rename_all`,
//! `rename_all_fields`, `skip`, `skip_serializing`, `skip_serializing_if`,
//! `flatten`, `tag`, `content`, `untagged`, `transparent` and `into` all
//! apply; `alias`, `default` and `skip_deserializing` only change reading.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, ToTokens};
use serde_derive_internals::ast::{self, Style};
use serde_derive_internals::attr::TagType;
use serde_derive_internals::{Ctxt, Derive};
use syn::{Attribute, Data, DeriveInput, Meta};

/// One entry of the description, as the runtime's `FieldDescriptor`.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    /// The key on the wire (see `FieldDescriptor::name`).
    name: String,
    /// The Rust type, or what serde adds: `tag`, `content`, `untagged`, `variant`.
    ty: String,
    /// Protobuf field number.
    tag: Option<u32>,
    /// Protobuf kind.
    kind: Option<String>,
    /// `skip_serializing_if`: may be left out.
    optional: bool,
    /// `flatten`: the keys of `ty` are written in its place.
    flatten: bool,
    /// The value serde writes by itself (the name under a `tag`).
    constant: Option<String>,
}

impl Field {
    fn new(name: impl Into<String>, ty: impl Into<String>) -> Self {
        Field {
            name: name.into(),
            ty: ty.into(),
            tag: None,
            kind: None,
            optional: false,
            flatten: false,
            constant: None,
        }
    }

    fn descriptor(&self) -> TokenStream {
        let (name, ty, optional, flatten) = (&self.name, &self.ty, self.optional, self.flatten);
        let tag = option(self.tag.as_ref());
        let kind = option(self.kind.as_ref());
        let constant = option(self.constant.as_ref());
        quote! {
            ::eventwire::__private::FieldDescriptor {
                name: #name,
                ty: #ty,
                tag: #tag,
                protobuf: #kind,
                optional: #optional,
                flatten: #flatten,
                constant: #constant,
            }
        }
    }
}

fn option<T: ToTokens>(v: Option<&T>) -> TokenStream {
    match v {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// `&[FieldDescriptor { .. }, ..]` for the registry descriptor.
pub(crate) fn fields(input: &DeriveInput, protobuf: bool) -> TokenStream {
    let fields = if protobuf {
        Ok(protobuf_fields(input))
    } else {
        serde_fields(input)
    };
    match fields {
        Ok(fields) => {
            let items = fields.iter().map(Field::descriptor);
            quote!(&[#(#items),*])
        }
        Err(e) => e,
    }
}

/// What serde writes for a JSON event.
fn serde_fields(input: &DeriveInput) -> Result<Vec<Field>, TokenStream> {
    // serde_derive_internals is built on syn 3; the tokens are the same.
    let input: syn3::DeriveInput = syn3::parse2(input.to_token_stream()).map_err(|e| {
        syn3::Error::new(
            e.span(),
            format!("eventwire cannot read this type's serde attributes for the schema lock: {e}"),
        )
        .to_compile_error()
    })?;
    let cx = Ctxt::new();
    let private = Ident::new("__private", Span::call_site());
    let container = ast::Container::from_ast(&cx, &input, Derive::Serialize, &private);
    // Serde's derive reports these errors on the same input.
    let _ = cx.check();
    Ok(container.map(|c| describe(&c)).unwrap_or_default())
}

fn describe(cont: &ast::Container<'_>) -> Vec<Field> {
    let attrs = &cont.attrs;
    // `into`: serde writes the other type, as a newtype of it.
    if let Some(into) = attrs.type_into() {
        return vec![Field::new("0", type_name(into))];
    }
    match &cont.data {
        // `transparent`: serde writes the one field as the whole payload,
        // exactly as it writes a newtype struct.
        ast::Data::Struct(_, fields) if attrs.transparent() => fields
            .iter()
            .filter(|f| f.attrs.transparent())
            .map(|f| Field::new("0", type_name(f.ty)))
            .collect(),
        ast::Data::Struct(style, fields) => {
            let mut out = Vec::new();
            if let (Style::Struct, TagType::Internal { tag }) = (style, attrs.tag()) {
                out.push(tag_field(
                    tag.clone(),
                    attrs.name().serialize_name().value.clone(),
                ));
            }
            out.extend(content(*style, fields));
            out
        }
        ast::Data::Enum(variants) => variants
            .iter()
            .filter(|v| !v.attrs.skip_serializing())
            .flat_map(|v| variant(attrs.tag(), v))
            .collect(),
    }
}

/// The fields serde writes for one struct or variant body, keyed by their
/// serialized name (by position in a tuple).
fn content(style: Style, fields: &[ast::Field<'_>]) -> Vec<Field> {
    fields
        .iter()
        .filter(|f| !f.attrs.skip_serializing())
        .enumerate()
        .map(|(position, f)| {
            let name = match style {
                // Skipped elements are left out of the array: positions shift.
                Style::Tuple | Style::Newtype => position.to_string(),
                Style::Struct | Style::Unit => f.attrs.name().serialize_name().value.clone(),
            };
            Field {
                optional: f.attrs.skip_serializing_if().is_some(),
                flatten: f.attrs.flatten(),
                ..Field::new(name, type_name(f.ty))
            }
        })
        .collect()
}

/// One variant of an enum event: its entries are `Variant.key`, and the
/// enum's representation adds what serde writes around the variant's fields.
fn variant(tagging: &TagType, v: &ast::Variant<'_>) -> Vec<Field> {
    let name = v.attrs.name().serialize_name().value.clone();
    let mut fields = content(v.style, &v.fields);
    let prefixed = |f: Field| Field {
        name: format!("{name}.{}", f.name),
        ..f
    };
    let tagging = if v.attrs.untagged() {
        &TagType::None
    } else {
        tagging
    };
    let mut out = Vec::new();
    match tagging {
        // `{"Variant": {..}}`; a unit variant is the string `"Variant"`.
        TagType::External if matches!(v.style, Style::Unit) => {
            out.push(Field::new(name.clone(), "variant"));
        }
        TagType::External => {}
        // `{"tag": "Variant", ..}`: a newtype's own fields sit beside the tag.
        TagType::Internal { tag } => {
            if let Style::Newtype = v.style {
                fields.iter_mut().for_each(|f| f.flatten = true);
            }
            out.push(prefixed(tag_field(tag.clone(), name.clone())));
        }
        // `{"tag": "Variant", "content": ..}`; a unit variant has no content.
        TagType::Adjacent { tag, content } => {
            out.push(prefixed(tag_field(tag.clone(), name.clone())));
            if !matches!(v.style, Style::Unit) {
                out.push(prefixed(Field::new(content.clone(), "content")));
            }
        }
        // The variant's fields alone, with nothing naming the variant.
        TagType::None => out.push(Field::new(name.clone(), "untagged")),
    }
    out.extend(fields.into_iter().map(prefixed));
    out
}

/// The key serde adds under `#[serde(tag = "...")]`, with the name it writes.
fn tag_field(tag: String, value: String) -> Field {
    Field {
        constant: Some(value),
        ..Field::new(tag, "tag")
    }
}

fn type_name<T: ToTokens>(ty: &T) -> String {
    ty.to_token_stream().to_string().replace(' ', "")
}

/// Every field, as prost encodes it: the Rust name, the tag and the kind.
/// Serde attributes do not change the protobuf wire.
fn protobuf_fields(input: &DeriveInput) -> Vec<Field> {
    // `prost::Message` is derived for structs only.
    let Data::Struct(s) = &input.data else {
        return Vec::new();
    };
    s.fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f.ident.as_ref().map_or_else(
                || i.to_string(),
                |id| id.to_string().trim_start_matches("r#").to_owned(),
            );
            let (tag, kind) = prost(&f.attrs);
            Field {
                tag,
                kind,
                ..Field::new(name, type_name(&f.ty))
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn described(input: DeriveInput) -> Vec<Field> {
        serde_fields(&input).unwrap()
    }

    fn names(fields: &[Field]) -> Vec<&str> {
        fields.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn names_follow_rename_all_and_rename() {
        let fields = described(parse_quote! {
            #[serde(rename_all = "camelCase")]
            struct E {
                order_id: String,
                #[serde(rename = "cur", alias = "currency_code")]
                currency: String,
                #[serde(rename(serialize = "sent", deserialize = "read"))]
                total_cents: i64,
                r#type: u8,
            }
        });
        assert_eq!(names(&fields), ["orderId", "cur", "sent", "type"]);
    }

    #[test]
    fn skipped_fields_are_left_out_and_conditional_ones_are_optional() {
        let fields = described(parse_quote! {
            struct E {
                #[serde(skip)]
                a: u8,
                #[serde(skip_serializing)]
                b: u8,
                #[serde(skip_deserializing)]
                c: u8,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                d: Option<u8>,
                #[serde(default)]
                e: u8,
            }
        });
        assert_eq!(names(&fields), ["c", "d", "e"]);
        let optional: Vec<bool> = fields.iter().map(|f| f.optional).collect();
        assert_eq!(optional, [false, true, false]);
    }

    #[test]
    fn a_flattened_field_records_its_type() {
        let fields = described(parse_quote! {
            struct E {
                id: u64,
                #[serde(flatten)]
                audit: Audit,
            }
        });
        assert_eq!(
            fields[1],
            Field {
                flatten: true,
                ..Field::new("audit", "Audit")
            }
        );
    }

    #[test]
    fn a_tagged_struct_writes_its_serialized_name() {
        let fields = described(parse_quote! {
            #[serde(tag = "kind", rename = "order_placed")]
            struct OrderPlaced {
                id: u64,
            }
        });
        assert_eq!(names(&fields), ["kind", "id"]);
        assert_eq!(fields[0].constant.as_deref(), Some("order_placed"));
    }

    #[test]
    fn transparent_and_into_describe_the_payload_type() {
        let transparent = described(parse_quote! {
            #[serde(transparent)]
            struct E {
                inner: Inner,
                #[serde(skip)]
                marker: (),
            }
        });
        assert_eq!(transparent, [Field::new("0", "Inner")]);
        let into = described(parse_quote! {
            #[serde(into = "Wire")]
            struct E {
                inner: Inner,
            }
        });
        assert_eq!(into, [Field::new("0", "Wire")]);
    }

    #[test]
    fn tuple_positions_skip_left_out_elements() {
        let fields = described(parse_quote! {
            struct E(u8, #[serde(skip)] u16, u32);
        });
        assert_eq!(names(&fields), ["0", "1"]);
        assert_eq!(fields[1].ty, "u32");
    }

    #[test]
    fn enum_representations() {
        let external = described(parse_quote! {
            #[serde(rename_all = "snake_case", rename_all_fields = "camelCase")]
            enum E {
                AccountOpened { account_id: u64 },
                Frozen,
                #[serde(skip_serializing)]
                Hidden,
            }
        });
        assert_eq!(names(&external), ["account_opened.accountId", "frozen"]);
        assert_eq!(external[1].ty, "variant");

        let internal = described(parse_quote! {
            #[serde(tag = "type")]
            enum E {
                Opened { id: u64 },
                Moved(Audit),
            }
        });
        assert_eq!(
            names(&internal),
            ["Opened.type", "Opened.id", "Moved.type", "Moved.0"]
        );
        assert_eq!(internal[0].constant.as_deref(), Some("Opened"));
        assert!(internal[3].flatten);

        let adjacent = described(parse_quote! {
            #[serde(tag = "t", content = "c")]
            enum E {
                Opened { id: u64 },
                Frozen,
            }
        });
        assert_eq!(
            names(&adjacent),
            ["Opened.t", "Opened.c", "Opened.id", "Frozen.t"]
        );

        let untagged = described(parse_quote! {
            enum E {
                Opened { id: u64 },
                #[serde(untagged)]
                Other { raw: String },
            }
        });
        assert_eq!(names(&untagged), ["Opened.id", "Other", "Other.raw"]);
        assert_eq!(untagged[1].ty, "untagged");
    }

    #[test]
    fn protobuf_fields_ignore_serde() {
        let input: DeriveInput = parse_quote! {
            struct E {
                #[prost(string, tag = "1")]
                #[serde(rename = "x", skip)]
                id: String,
                #[prost(uint32, repeated, tag = "2")]
                depots: Vec<u32>,
            }
        };
        let fields = protobuf_fields(&input);
        assert_eq!(names(&fields), ["id", "depots"]);
        assert_eq!(fields[1].tag, Some(2));
        assert_eq!(fields[1].kind.as_deref(), Some("uint32 repeated"));
    }
}
