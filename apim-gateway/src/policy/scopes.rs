//! Scopes: the operation's policy runs the API's where it says `<base />`,
//! and the API's runs the service's
//! (learn.microsoft.com/azure/api-management/api-management-howto-policies#scopes).

use super::document::Sections;
use super::{Policy, Statements};

/// The statements one operation runs, `<base />` expanded, per section.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    /// `inbound`.
    pub inbound: Statements,
    /// `backend`.
    pub backend: Statements,
    /// `outbound`.
    pub outbound: Statements,
    /// `on-error`.
    pub on_error: Statements,
}

/// The pipeline of `scopes`, outermost (service) first. A scope without a
/// document of its own (an operation with no policy) is all `<base />`.
pub fn compose(scopes: &[Option<&Sections>]) -> Pipeline {
    Pipeline {
        inbound: section(scopes, |s| &s.inbound),
        backend: section(scopes, |s| &s.backend),
        outbound: section(scopes, |s| &s.outbound),
        on_error: section(scopes, |s| &s.on_error),
    }
}

fn section(scopes: &[Option<&Sections>], pick: fn(&Sections) -> &Statements) -> Statements {
    let mut composed = Statements::new();
    for scope in scopes {
        composed = match scope {
            None => composed,
            Some(sections) => expand(pick(sections), &composed),
        };
    }
    composed
}

/// `statements` with each top-level `<base />` replaced by `outer`. A base
/// inside `choose` is not allowed by APIM either, so only the top level is
/// looked at.
fn expand(statements: &Statements, outer: &Statements) -> Statements {
    let mut expanded = Statements::with_capacity(statements.len() + outer.len());
    for statement in statements {
        match statement.policy {
            Policy::Base => expanded.extend(outer.iter().cloned()),
            _ => expanded.push(statement.clone()),
        }
    }
    expanded
}
