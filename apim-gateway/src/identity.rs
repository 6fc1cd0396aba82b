//! The local identity provider: a development stand-in for Microsoft Entra
//! ID. It serves an OpenID configuration and its JWKS under
//! `/local-identity/v2.0/`, and issues RS256 tokens signed with a key kept
//! in the gateway's state folder (made on first use), so that
//! `validate-jwt` checks real signatures, issuer, audience, lifetime and
//! claims, and the policy needs no change to run against Entra ID.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::{Generate as _, PrivateKey};
use serde_json::{Value, json};

/// Where the identity's routes live on the gateway.
pub const PATH_PREFIX: &str = "/local-identity/v2.0";
/// The OpenID configuration's path.
pub const OPENID_CONFIGURATION_PATH: &str = "/local-identity/v2.0/.well-known/openid-configuration";
/// The key set's path.
pub const JWKS_PATH: &str = "/local-identity/v2.0/keys";
const KEY_FILE: &str = "local-identity-signing-key.pem";

/// The signing key and the issuer it signs for.
pub struct LocalIdentity {
    issuer: String,
    key_id: String,
    encoding: EncodingKey,
    jwk: Value,
}

/// What a token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `aud`.
    pub audience: String,
    /// `sub`.
    pub subject: String,
    /// `roles` (app roles: application permissions).
    pub roles: Vec<String>,
    /// `scp` (delegated scopes), space-separated in the token.
    pub scopes: Vec<String>,
    /// Lifetime from now; `exp` is `iat` plus this.
    pub lifetime: Duration,
    /// `iss`, when not the identity's own (a test of a wrong issuer).
    pub issuer: Option<String>,
    /// How long ago it was issued (`iat`, `nbf`): zero but in tests of
    /// expiry.
    pub issued_ago: Duration,
    /// How long after issue it becomes valid (`nbf`): zero but in tests.
    pub not_before_in: Duration,
}

impl LocalIdentity {
    /// Loads the key from `state_dir`, making one the first time.
    pub fn open(state_dir: &Path, issuer: &str) -> anyhow::Result<Self> {
        let path = state_dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => PrivateKey::from_pkcs1_pem(&pem)
                .with_context(|| format!("reading the signing key {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path)?,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        };
        let n = URL_SAFE_NO_PAD.encode(key.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(key.e_bytes());
        // The key id is the key's own digest, as RFC 7638 thumbprints are:
        // a new key gets a new id, so a cached JWKS is refetched.
        let thumbprint = {
            use sha2::Digest as _;
            let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
        };
        let der = key.to_pkcs1_der().context("encoding the signing key")?;
        Ok(LocalIdentity {
            issuer: issuer.to_owned(),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": thumbprint, "n": n, "e": e}),
            key_id: thumbprint,
        })
    }

    /// The issuer (`iss`) of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The OpenID configuration, its URLs on `gateway_url`.
    pub fn openid_configuration(&self, gateway_url: &str) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{gateway_url}{JWKS_PATH}"),
            "token_endpoint": format!("{gateway_url}{PATH_PREFIX}/token"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        })
    }

    /// The key set.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// A signed token.
    pub fn issue(&self, request: &TokenRequest) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs()
            .saturating_sub(request.issued_ago.as_secs());
        let mut claims = json!({
            "iss": request.issuer.as_deref().unwrap_or(&self.issuer),
            "aud": request.audience,
            "sub": request.subject,
            "iat": now,
            "nbf": now + request.not_before_in.as_secs(),
            "exp": now + request.lifetime.as_secs(),
            "ver": "2.0",
        });
        if !request.roles.is_empty() {
            claims["roles"] = json!(request.roles);
        }
        if !request.scopes.is_empty() {
            claims["scp"] = json!(request.scopes.join(" "));
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).context("signing the token")
    }
}

fn create_key(path: &PathBuf) -> anyhow::Result<PrivateKey> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = PrivateKey::generate();
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .context("encoding the signing key")?;
    // Written once, whole, and readable by this user only.
    let temporary = path.with_extension("pem.tmp");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(pem.as_bytes())?;
    }
    std::fs::rename(&temporary, path).with_context(|| format!("creating {}", path.display()))?;
    Ok(key)
}
