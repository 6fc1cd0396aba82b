//! One policy document: XML to [`Statements`] per section, refusing every
//! element, attribute and expression the gateway cannot run.

use std::path::Path;
use std::sync::Arc;

use roxmltree::{Document, Node};

use super::{
    BackendTarget, CacheLookup, Location, NamedValues, Policy, RateLimitByKey, RequiredClaim,
    SetParameter, Statement, Statements, Text, Unsupported, ValidateJwt,
};
use crate::expression::{self, Expression};

/// The four sections of a document, each as written.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    /// `inbound`.
    pub inbound: Statements,
    /// `backend`.
    pub backend: Statements,
    /// `outbound`.
    pub outbound: Statements,
    /// `on-error`.
    pub on_error: Statements,
}

/// Reads the policy document in `text` (the file `file`), named values
/// substituted first.
pub fn parse(file: &Path, text: &str, named: &NamedValues) -> Result<Sections, Unsupported> {
    let file: Arc<Path> = Arc::from(file);
    let at_offset = |offset: usize| Location {
        file: file.clone(),
        line: line_of(text, offset),
    };
    let text = named.substitute(text).map_err(|undefined| Unsupported {
        location: at_offset(undefined.offset),
        construct: format!("the named value `{}` is not defined", undefined.name),
    })?;
    let document = Document::parse(&text).map_err(|e| Unsupported {
        location: Location {
            file: file.clone(),
            line: e.pos().row,
        },
        construct: format!("not well-formed XML: {e}"),
    })?;
    let reader = Reader {
        file: file.clone(),
        document: &document,
        text: &text,
    };
    let root = document.root_element();
    if root.tag_name().name() != "policies" {
        return Err(reader.unsupported(root, "the root element must be <policies>".to_owned()));
    }
    reader.attributes(root, &[])?;
    let mut sections = Sections::default();
    let mut seen: Vec<&str> = Vec::new();
    for section in elements(root) {
        let name = section.tag_name().name();
        if seen.contains(&name) {
            return Err(reader.unsupported(section, format!("a second <{name}> section")));
        }
        seen.push(name);
        reader.attributes(section, &[])?;
        let statements = reader.statements(section)?;
        let slot = match section.tag_name().name() {
            "inbound" => &mut sections.inbound,
            "backend" => &mut sections.backend,
            "outbound" => &mut sections.outbound,
            "on-error" => &mut sections.on_error,
            other => return Err(reader.unsupported(section, format!("the section <{other}>"))),
        };
        *slot = statements;
    }
    // A section left out would silently drop the enclosing scope's.
    for name in ["inbound", "backend", "outbound", "on-error"] {
        if !seen.contains(&name) {
            return Err(reader.unsupported(
                root,
                format!("no <{name}> section (write <{name}><base /></{name}>)"),
            ));
        }
    }
    Ok(sections)
}

fn line_of(text: &str, offset: usize) -> u32 {
    let before = text.get(..offset).unwrap_or(text);
    u32::try_from(before.bytes().filter(|&b| b == b'\n').count() + 1).unwrap_or(u32::MAX)
}

fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

struct Reader<'a, 'input> {
    file: Arc<Path>,
    document: &'a Document<'input>,
    text: &'a str,
}

impl<'a, 'input> Reader<'a, 'input> {
    fn location(&self, node: Node<'_, '_>) -> Location {
        Location {
            file: self.file.clone(),
            line: self.document.text_pos_at(node.range().start).row,
        }
    }

    fn unsupported(&self, node: Node<'_, '_>, construct: String) -> Unsupported {
        Unsupported {
            location: self.location(node),
            construct,
        }
    }

    /// Refuses any attribute not in `allowed`.
    fn attributes(&self, node: Node<'_, '_>, allowed: &[&str]) -> Result<(), Unsupported> {
        for attribute in node.attributes() {
            if !allowed.contains(&attribute.name()) {
                return Err(self.unsupported(
                    node,
                    format!(
                        "the attribute `{}` of <{}> is not supported",
                        attribute.name(),
                        node.tag_name().name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses any child element not in `allowed`.
    fn children(&self, node: Node<'_, '_>, allowed: &[&str]) -> Result<(), Unsupported> {
        for child in elements(node) {
            if !allowed.contains(&child.tag_name().name()) {
                return Err(self.unsupported(
                    child,
                    format!(
                        "<{}> inside <{}> is not supported",
                        child.tag_name().name(),
                        node.tag_name().name()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn statements(&self, section: Node<'_, '_>) -> Result<Statements, Unsupported> {
        elements(section).map(|node| self.statement(node)).collect()
    }

    /// Statements inside another policy (`choose`, `return-response`),
    /// where `<base />` has no meaning.
    fn nested(&self, parent: Node<'_, '_>) -> Result<Statements, Unsupported> {
        for child in elements(parent) {
            if child.tag_name().name() == "base" {
                return Err(self.unsupported(
                    child,
                    format!("<base /> inside <{}>", parent.tag_name().name()),
                ));
            }
        }
        self.statements(parent)
    }

    fn statement(&self, node: Node<'_, '_>) -> Result<Statement, Unsupported> {
        let name = node.tag_name().name();
        let policy = match name {
            "base" => {
                self.attributes(node, &[])?;
                Policy::Base
            }
            "set-variable" => {
                self.attributes(node, &["name", "value"])?;
                Policy::SetVariable {
                    name: self.required(node, "name")?.to_owned(),
                    value: self.text_attribute(node, "value")?,
                }
            }
            "set-header" => Policy::SetHeader(self.set_parameter(node)?),
            "set-query-parameter" => Policy::SetQueryParameter(self.set_parameter(node)?),
            "rewrite-uri" => {
                self.attributes(node, &["template", "copy-unmatched-params"])?;
                self.children(node, &[])?;
                Policy::RewriteUri {
                    template: self.required(node, "template")?.to_owned(),
                    copy_unmatched_params: self.flag(node, "copy-unmatched-params", true)?,
                }
            }
            "validate-jwt" => Policy::ValidateJwt(Box::new(self.validate_jwt(node)?)),
            "rate-limit-by-key" => Policy::RateLimitByKey(self.rate_limit_by_key(node)?),
            "cache-lookup" => Policy::CacheLookup(self.cache_lookup(node)?),
            "cache-store" => {
                self.attributes(node, &["duration"])?;
                Policy::CacheStore {
                    duration_seconds: self.number(node, "duration")?,
                }
            }
            "choose" => self.choose(node)?,
            "return-response" => {
                self.attributes(node, &[])?;
                self.children(node, &["set-status", "set-header", "set-body"])?;
                Policy::ReturnResponse(self.nested(node)?)
            }
            "set-status" => {
                self.attributes(node, &["code", "reason"])?;
                Policy::SetStatus {
                    code: self.text_attribute(node, "code")?,
                    reason: match node.attribute("reason") {
                        Some(_) => Some(self.text_attribute(node, "reason")?),
                        None => None,
                    },
                }
            }
            "set-body" => {
                self.attributes(node, &[])?;
                self.children(node, &[])?;
                Policy::SetBody(self.text_content(node)?)
            }
            "set-backend-service" => {
                self.attributes(node, &["backend-id", "base-url"])?;
                let target = match (node.attribute("backend-id"), node.attribute("base-url")) {
                    (Some(_), None) => BackendTarget::Id(self.text_attribute(node, "backend-id")?),
                    (None, Some(_)) => {
                        BackendTarget::BaseUrl(self.text_attribute(node, "base-url")?)
                    }
                    _ => {
                        return Err(self.unsupported(
                            node,
                            "<set-backend-service> needs exactly one of backend-id and base-url"
                                .to_owned(),
                        ));
                    }
                };
                Policy::SetBackendService(target)
            }
            "authentication-managed-identity" => {
                self.attributes(node, &["resource", "output-token-variable-name"])?;
                Policy::AuthenticationManagedIdentity {
                    resource: self.text_attribute(node, "resource")?,
                    output_token_variable_name: node
                        .attribute("output-token-variable-name")
                        .map(str::to_owned),
                }
            }
            "forward-request" => {
                self.attributes(node, &["timeout"])?;
                Policy::ForwardRequest {
                    timeout_seconds: match node.attribute("timeout") {
                        Some(_) => self.number(node, "timeout")?,
                        // The reference's default.
                        None => 300,
                    },
                }
            }
            other => {
                return Err(self.unsupported(
                    node,
                    format!("the policy <{other}> is not supported by apim-gateway"),
                ));
            }
        };
        Ok(Statement {
            at: self.location(node),
            policy,
        })
    }

    /// An attribute read as literal text: an expression there is refused,
    /// since the gateway would otherwise take it as text.
    fn required<'n>(&self, node: Node<'n, '_>, name: &str) -> Result<&'n str, Unsupported> {
        if let Some(value) = node.attribute(name)
            && expression::is_expression(value)
        {
            return Err(self.unsupported(
                node,
                format!(
                    "an expression in `{name}` of <{}> is not supported",
                    node.tag_name().name()
                ),
            ));
        }
        node.attribute(name).ok_or_else(|| {
            self.unsupported(
                node,
                format!("<{}> needs the attribute `{name}`", node.tag_name().name()),
            )
        })
    }

    fn flag(&self, node: Node<'_, '_>, name: &str, default: bool) -> Result<bool, Unsupported> {
        match node.attribute(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => {
                Err(self.unsupported(node, format!("`{name}` must be true or false, not {v:?}")))
            }
        }
    }

    fn number(&self, node: Node<'_, '_>, name: &str) -> Result<u64, Unsupported> {
        let text = self.required(node, name)?;
        text.trim().parse().map_err(|_| {
            self.unsupported(
                node,
                format!(
                    "`{name}` must be a number here (an expression is not supported): {text:?}"
                ),
            )
        })
    }

    fn text_attribute(&self, node: Node<'_, '_>, name: &str) -> Result<Text, Unsupported> {
        let value = node.attribute(name).ok_or_else(|| {
            self.unsupported(
                node,
                format!("<{}> needs the attribute `{name}`", node.tag_name().name()),
            )
        })?;
        let start = node
            .attribute_node(name)
            .map(|a| a.range_value().start)
            .unwrap_or(node.range().start);
        self.text(value, start)
    }

    fn text_content(&self, node: Node<'_, '_>) -> Result<Text, Unsupported> {
        let content: String = node
            .children()
            .filter(|child| child.is_text())
            .filter_map(|child| child.text())
            .collect();
        let start = node
            .first_child()
            .map(|child| child.range().start)
            .unwrap_or(node.range().start);
        self.text(&content, start)
    }

    /// A literal or an expression, parsed now so that an unsupported one
    /// stops the gateway before it serves anything.
    fn text(&self, value: &str, start: usize) -> Result<Text, Unsupported> {
        if !expression::is_expression(value) {
            return Ok(Text::Literal(value.to_owned()));
        }
        Expression::parse(value)
            .map(|parsed| Text::Expression(Arc::new(parsed)))
            .map_err(|unsupported| Unsupported {
                location: Location {
                    file: self.file.clone(),
                    // The expression's text is the document's from `start`
                    // on, entities aside, which hold no line breaks.
                    line: line_of(self.text, start + unsupported.offset),
                },
                construct: format!("in a policy expression: {}", unsupported.construct),
            })
    }

    fn set_parameter(&self, node: Node<'_, '_>) -> Result<SetParameter, Unsupported> {
        self.attributes(node, &["name", "exists-action"])?;
        self.children(node, &["value"])?;
        let exists_action = match node.attribute("exists-action") {
            Some(_) => self.text_attribute(node, "exists-action")?,
            None => Text::Literal("override".to_owned()),
        };
        if let Text::Literal(action) = &exists_action
            && !matches!(action.as_str(), "override" | "skip" | "append" | "delete")
        {
            return Err(self.unsupported(node, format!("exists-action {action:?}")));
        }
        let values = elements(node)
            .map(|value| {
                self.attributes(value, &[])?;
                self.text_content(value)
            })
            .collect::<Result<_, _>>()?;
        Ok(SetParameter {
            name: self.required(node, "name")?.to_owned(),
            exists_action,
            values,
        })
    }

    fn validate_jwt(&self, node: Node<'_, '_>) -> Result<ValidateJwt, Unsupported> {
        self.attributes(
            node,
            &[
                "header-name",
                "require-scheme",
                "failed-validation-httpcode",
                "failed-validation-error-message",
                "require-expiration-time",
                "require-signed-tokens",
                "clock-skew",
                "output-token-variable-name",
            ],
        )?;
        self.children(
            node,
            &["openid-config", "audiences", "issuers", "required-claims"],
        )?;
        let mut openid_config_url = None;
        let mut audiences = Vec::new();
        let mut issuers = Vec::new();
        let mut required_claims = Vec::new();
        for child in elements(node) {
            match child.tag_name().name() {
                "openid-config" => {
                    self.attributes(child, &["url"])?;
                    openid_config_url = Some(self.required(child, "url")?.to_owned());
                }
                "audiences" => audiences = self.plain_list(child, "audience")?,
                "issuers" => issuers = self.plain_list(child, "issuer")?,
                _ => {
                    self.children(child, &["claim"])?;
                    for claim in elements(child) {
                        self.attributes(claim, &["name", "match", "separator"])?;
                        let match_any = match claim.attribute("match").unwrap_or("all") {
                            "all" => false,
                            "any" => true,
                            other => {
                                return Err(self.unsupported(claim, format!("match {other:?}")));
                            }
                        };
                        required_claims.push(RequiredClaim {
                            name: self.required(claim, "name")?.to_owned(),
                            match_any,
                            separator: claim.attribute("separator").map(str::to_owned),
                            values: self.plain_list(claim, "value")?,
                        });
                    }
                }
            }
        }
        let openid_config_url = openid_config_url.ok_or_else(|| {
            self.unsupported(
                node,
                "<validate-jwt> without <openid-config> (issuer-signing-keys are not supported)"
                    .to_owned(),
            )
        })?;
        for literal in [
            "require-scheme",
            "failed-validation-error-message",
            "output-token-variable-name",
        ] {
            if node.attribute(literal).is_some() {
                self.required(node, literal)?;
            }
        }
        let header_name = match node.attribute("header-name") {
            Some(_) => self.required(node, "header-name")?.to_owned(),
            None => {
                return Err(self.unsupported(
                    node,
                    "<validate-jwt> reads the token from header-name only".to_owned(),
                ));
            }
        };
        // Unsigned tokens would need a second validation path; nothing here
        // accepts them.
        if !self.flag(node, "require-signed-tokens", true)? {
            return Err(self.unsupported(node, "require-signed-tokens=\"false\"".to_owned()));
        }
        let httpcode = match node.attribute("failed-validation-httpcode") {
            Some(_) => {
                u16::try_from(self.number(node, "failed-validation-httpcode")?).unwrap_or(401)
            }
            None => 401,
        };
        Ok(ValidateJwt {
            header_name,
            require_scheme: node.attribute("require-scheme").map(str::to_owned),
            failed_validation_httpcode: httpcode,
            failed_validation_error_message: node
                .attribute("failed-validation-error-message")
                .map(str::to_owned),
            require_expiration_time: self.flag(node, "require-expiration-time", true)?,
            clock_skew_seconds: match node.attribute("clock-skew") {
                Some(_) => self.number(node, "clock-skew")?,
                None => 0,
            },
            openid_config_url,
            audiences,
            issuers,
            required_claims,
            output_token_variable_name: node
                .attribute("output-token-variable-name")
                .map(str::to_owned),
        })
    }

    /// Child elements `item` holding literal text.
    fn plain_list(&self, node: Node<'_, '_>, item: &str) -> Result<Vec<String>, Unsupported> {
        self.children(node, &[item])?;
        elements(node)
            .map(|child| {
                self.attributes(child, &[])?;
                match self.text_content(child)? {
                    Text::Literal(text) => Ok(text.trim().to_owned()),
                    Text::Expression(_) => Err(self
                        .unsupported(child, format!("an expression in <{item}> is not supported"))),
                }
            })
            .collect()
    }

    fn rate_limit_by_key(&self, node: Node<'_, '_>) -> Result<RateLimitByKey, Unsupported> {
        self.attributes(
            node,
            &[
                "calls",
                "renewal-period",
                "counter-key",
                "retry-after-variable-name",
                "retry-after-header-name",
                "remaining-calls-variable-name",
            ],
        )?;
        self.children(node, &[])?;
        let optional = |name: &str| node.attribute(name).map(str::to_owned);
        let renewal_period_seconds = self.number(node, "renewal-period")?;
        // The reference's maximum.
        if renewal_period_seconds > 300 {
            return Err(self.unsupported(
                node,
                format!("renewal-period {renewal_period_seconds}: at most 300 seconds"),
            ));
        }
        Ok(RateLimitByKey {
            calls: self.number(node, "calls")?,
            renewal_period_seconds,
            counter_key: self.text_attribute(node, "counter-key")?,
            retry_after_variable_name: optional("retry-after-variable-name"),
            retry_after_header_name: optional("retry-after-header-name"),
            remaining_calls_variable_name: optional("remaining-calls-variable-name"),
        })
    }

    fn cache_lookup(&self, node: Node<'_, '_>) -> Result<CacheLookup, Unsupported> {
        self.attributes(
            node,
            &[
                "vary-by-developer",
                "vary-by-developer-groups",
                "caching-type",
                "downstream-caching-type",
                "must-revalidate",
                "allow-private-response-caching",
            ],
        )?;
        self.children(node, &["vary-by-header", "vary-by-query-parameter"])?;
        // The gateway has one cache, its own memory: "internal" and
        // "prefer-external" without an external cache are the same.
        if let Some(kind) = node.attribute("caching-type")
            && !matches!(kind, "internal" | "prefer-external")
        {
            return Err(self.unsupported(
                node,
                format!("caching-type={kind:?} (only internal or prefer-external: no external cache here)"),
            ));
        }
        // "none" leaves the client's Cache-Control to the policies, which
        // is all this gateway does; the other two rewrite it.
        if let Some(kind) = node.attribute("downstream-caching-type")
            && kind != "none"
        {
            return Err(self.unsupported(
                node,
                format!("downstream-caching-type={kind:?} (only \"none\")"),
            ));
        }
        let mut vary_by_headers = Vec::new();
        let mut vary_by_query_parameters = Vec::new();
        for child in elements(node) {
            self.attributes(child, &[])?;
            let Text::Literal(text) = self.text_content(child)? else {
                return Err(self.unsupported(child, "an expression in a vary-by".to_owned()));
            };
            match child.tag_name().name() {
                "vary-by-header" => vary_by_headers.push(text.trim().to_owned()),
                _ => vary_by_query_parameters.extend(text.split(';').map(|p| p.trim().to_owned())),
            }
        }
        Ok(CacheLookup {
            vary_by_developer: self.flag(node, "vary-by-developer", false)?,
            vary_by_developer_groups: self.flag(node, "vary-by-developer-groups", false)?,
            allow_private_response_caching: self.flag(
                node,
                "allow-private-response-caching",
                false,
            )?,
            vary_by_headers,
            vary_by_query_parameters,
        })
    }

    fn choose(&self, node: Node<'_, '_>) -> Result<Policy, Unsupported> {
        self.attributes(node, &[])?;
        self.children(node, &["when", "otherwise"])?;
        let mut whens = Vec::new();
        let mut otherwise = None;
        for child in elements(node) {
            if child.tag_name().name() == "when" {
                self.attributes(child, &["condition"])?;
                let condition = self.text_attribute(child, "condition")?;
                if let Text::Literal(text) = &condition {
                    return Err(self.unsupported(
                        child,
                        format!("a <when> condition must be an expression, not {text:?}"),
                    ));
                }
                whens.push((condition, self.nested(child)?));
            } else {
                self.attributes(child, &[])?;
                otherwise = Some(self.nested(child)?);
            }
        }
        Ok(Policy::Choose { whens, otherwise })
    }
}
