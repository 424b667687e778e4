//! Values inside attributes, shared by both macros.

use syn::meta::ParseNestedMeta;
use syn::{Expr, ExprLit, Lit, LitBool, LitInt, LitStr};

use crate::ctxt::Ctxt;

/// An option value as written: kept with its tokens for spans.
pub(crate) enum Value {
    Str(LitStr),
    Int(LitInt),
    Bool(LitBool),
    /// `ordered` with no `= ...`.
    Flag,
    Other(Expr),
}

/// Reads `= <value>` after an option name, or nothing for a bare flag.
pub(crate) fn value(meta: &ParseNestedMeta<'_>) -> syn::Result<Value> {
    if !meta.input.peek(syn::Token![=]) {
        return Ok(Value::Flag);
    }
    let expr: Expr = meta.value()?.parse()?;
    Ok(match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Value::Str(s),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => Value::Int(i),
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Value::Bool(b),
        other => Value::Other(other),
    })
}

impl Value {
    fn describe_error(&self, cx: &Ctxt, name: &str, expected: &str) {
        match self {
            Value::Flag => cx.error_at(
                proc_macro2::Span::call_site(),
                format!("`{name}` needs a value: {expected}"),
            ),
            Value::Str(t) => cx.error_spanned_by(t, format!("`{name}` expects {expected}")),
            Value::Int(t) => cx.error_spanned_by(t, format!("`{name}` expects {expected}")),
            Value::Bool(t) => cx.error_spanned_by(t, format!("`{name}` expects {expected}")),
            Value::Other(t) => cx.error_spanned_by(t, format!("`{name}` expects {expected}")),
        }
    }

    /// A string literal, or an error naming what was expected.
    pub(crate) fn into_str(self, cx: &Ctxt, name: &str, expected: &str) -> Option<LitStr> {
        match self {
            Value::Str(s) => Some(s),
            other => {
                other.describe_error(cx, name, expected);
                None
            }
        }
    }

    /// An integer literal that fits `T`.
    pub(crate) fn into_int<T>(self, cx: &Ctxt, name: &str, expected: &str) -> Option<(T, LitInt)>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self {
            Value::Int(i) => match i.base10_parse::<T>() {
                Ok(v) => Some((v, i)),
                Err(_) => {
                    cx.error_spanned_by(
                        &i,
                        format!("`{name} = {i}` is out of range; expected {expected}"),
                    );
                    None
                }
            },
            other => {
                other.describe_error(cx, name, expected);
                None
            }
        }
    }
}

/// Reports an option given twice, at its second occurrence.
pub(crate) fn duplicate(cx: &Ctxt, meta: &ParseNestedMeta<'_>, name: &str) {
    cx.error_spanned_by(&meta.path, format!("duplicate option `{name}`"));
}

/// Reports an option that does not exist, with the list of those that do.
pub(crate) fn unknown(cx: &Ctxt, meta: &ParseNestedMeta<'_>, what: &str, known: &[&str]) {
    let name = meta
        .path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| {
            let path = &meta.path;
            quote::quote!(#path).to_string()
        });
    let suggestion = known
        .iter()
        .find(|k| edit_distance(k, &name) <= 2)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    cx.error_spanned_by(
        &meta.path,
        format!(
            "unknown {what} option `{name}`{suggestion}; expected one of: {}",
            known.join(", ")
        ),
    );
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
