//! `validate-jwt` (learn.microsoft.com/azure/api-management/validate-jwt-policy):
//! the bearer token's RS256 signature against the keys of the policy's
//! OpenID configuration, then issuer, audience, lifetime (with the clock
//! skew) and the required claims, with jsonwebtoken. A refusal carries the
//! `LastError.Reason` the error-handling reference lists
//! (learn.microsoft.com/azure/api-management/api-management-error-handling-policies).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::client::HttpClient;
use crate::expression::Headers;
use crate::policy::ValidateJwt;

/// OpenID configurations are kept this long, as the reference says APIM does.
const KEYS_KEPT: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the keys, at most this often.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(300);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `LastError.Reason`.
    pub reason: &'static str,
    /// `LastError.Message`.
    pub message: String,
}

fn refuse(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        message: message.into(),
    }
}

/// Keys by OpenID configuration URL.
pub struct Keys {
    client: HttpClient,
    sets: Mutex<HashMap<String, Fetched>>,
}

#[derive(Clone)]
struct Fetched {
    keys: JwkSet,
    at: Instant,
}

impl Keys {
    /// An empty cache fetching with `client`.
    pub fn new(client: HttpClient) -> Self {
        Keys {
            client,
            sets: Mutex::new(HashMap::new()),
        }
    }

    async fn key(&self, config_url: &str, kid: Option<&str>) -> Result<DecodingKey, Refusal> {
        let cached = self.cached(config_url);
        let usable = cached.as_ref().filter(|f| f.at.elapsed() < KEYS_KEPT);
        if let Some(fetched) = usable
            && let Ok(key) = find(&fetched.keys, kid)
        {
            return Ok(key);
        }
        if let Some(fetched) = usable
            && fetched.at.elapsed() < REFETCH_AT_MOST_EVERY
        {
            return Err(refuse(
                "TokenSignatureKeyNotFound",
                "Signature key was not found.",
            ));
        }
        let keys = self.fetch(config_url).await.map_err(|e| {
            tracing::warn!(config_url, error = %e, "the OpenID configuration could not be read");
            refuse("TokenSignatureKeyNotFound", "Signature key was not found.")
        })?;
        let key = find(&keys, kid);
        if let Ok(mut sets) = self.sets.lock() {
            sets.insert(
                config_url.to_owned(),
                Fetched {
                    keys,
                    at: Instant::now(),
                },
            );
        }
        key
    }

    fn cached(&self, config_url: &str) -> Option<Fetched> {
        self.sets.lock().ok()?.get(config_url).cloned()
    }

    async fn fetch(&self, config_url: &str) -> anyhow::Result<JwkSet> {
        let configuration = self.client.get_json(config_url).await?;
        let Some(jwks_uri) = configuration.get("jwks_uri").and_then(Value::as_str) else {
            anyhow::bail!("{config_url} has no jwks_uri");
        };
        Ok(serde_json::from_value(
            self.client.get_json(jwks_uri).await?,
        )?)
    }
}

fn find(keys: &JwkSet, kid: Option<&str>) -> Result<DecodingKey, Refusal> {
    let jwk = match kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    };
    let Some(jwk) = jwk else {
        return Err(refuse(
            "TokenSignatureKeyNotFound",
            "Signature key was not found.",
        ));
    };
    DecodingKey::from_jwk(jwk).map_err(|e| refuse("TokenSignatureKeyNotFound", e.to_string()))
}

/// Checks the token in `headers` against `policy`; the token's claims when
/// it passes.
pub async fn validate(
    policy: &ValidateJwt,
    headers: &Headers,
    keys: &Keys,
) -> Result<Value, Refusal> {
    let Some(value) = headers.values(&policy.header_name).next() else {
        return Err(refuse("TokenNotPresent", "JWT not present."));
    };
    let token = match &policy.require_scheme {
        Some(scheme) => {
            let (given, token) = value.trim().split_once(' ').unwrap_or((value, ""));
            if !given.eq_ignore_ascii_case(scheme) || token.trim().is_empty() {
                return Err(refuse("TokenNotPresent", "JWT not present."));
            }
            token.trim()
        }
        None => value.trim(),
    };
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| refuse("JwtInvalid", "JWT is malformed."))?;
    if header.alg != Algorithm::RS256 {
        // Unsigned ("none") and HMAC tokens: require-signed-tokens, and
        // an OpenID configuration publishes public keys only.
        return Err(refuse(
            "TokenSignatureInvalid",
            format!("The token's algorithm {:?} is not accepted.", header.alg),
        ));
    }
    let key = keys
        .key(&policy.openid_config_url, header.kid.as_deref())
        .await?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = policy.clock_skew_seconds;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec![];
    if policy.require_expiration_time {
        required.push("exp");
    }
    validation.set_required_spec_claims(&required);
    if policy.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&policy.audiences);
    }
    if !policy.issuers.is_empty() {
        validation.set_issuer(&policy.issuers);
    }
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => refuse(
                "TokenExpired",
                "Lifetime validation failed. The token is expired.",
            ),
            ErrorKind::ImmatureSignature => refuse(
                "JwtInvalid",
                "Lifetime validation failed. The token is not yet valid.",
            ),
            ErrorKind::InvalidAudience => {
                refuse("TokenAudienceNotAllowed", "Audience validation failed.")
            }
            ErrorKind::InvalidIssuer => {
                refuse("TokenIssuerNotAllowed", "Issuer validation failed.")
            }
            ErrorKind::InvalidSignature => {
                refuse("TokenSignatureInvalid", "Signature validation failed.")
            }
            ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => refuse(
                "TokenExpired",
                "Lifetime validation failed. The token has no expiration time.",
            ),
            _ => refuse("JwtInvalid", "JWT is malformed."),
        })?
        .claims;
    for claim in &policy.required_claims {
        let Some(found) = claims.get(&claim.name) else {
            return Err(refuse(
                "TokenClaimNotFound",
                format!("Claim {} is missing.", claim.name),
            ));
        };
        if claim.values.is_empty() {
            continue;
        }
        let present: Vec<String> = match found {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Value::String(text) => match &claim.separator {
                Some(separator) => text.split(separator.as_str()).map(str::to_owned).collect(),
                None => vec![text.clone()],
            },
            other => vec![other.to_string()],
        };
        let accepted = |value: &String| present.contains(value);
        let ok = if claim.match_any {
            claim.values.iter().any(accepted)
        } else {
            claim.values.iter().all(accepted)
        };
        if !ok {
            return Err(refuse(
                "TokenClaimValueNotAllowed",
                format!("Claim {} has no accepted value.", claim.name),
            ));
        }
    }
    Ok(claims)
}
