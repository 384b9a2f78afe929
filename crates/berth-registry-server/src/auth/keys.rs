//! The token signing key (ES256, generated on first start, kept under the root with mode
//! 0600) and the claims of the tokens it signs.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::Scope;

/// The PKCS#8 PEM private key, under the registry root.
pub const KEY_FILE: &str = "auth-key.pem";

/// Allowed clock skew when checking `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("token key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token key {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The claims of an access token (the Docker registry token format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user or `org+robot`; empty for anonymous tokens.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    /// The granted scopes.
    #[serde(default)]
    pub access: Vec<Scope>,
}

/// Signs and verifies access tokens.
pub struct TokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// Loads `<root>/auth-key.pem`, generating it (mode 0600) if it doesn't exist yet.
    pub fn load_or_create(root: &Path) -> Result<TokenKey, KeyError> {
        let path = root.join(KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(pem) => {
                let mode = fs::metadata(&path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "token key is readable by others");
                }
                return TokenKey::from_pem(&pem, &path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        fs::create_dir_all(root).map_err(io)?;
        let pem = generate_pem(&path)?;
        // Write aside and link into place, so a concurrent start never reads half a key and
        // the first key written wins.
        let tmp = root.join(format!(".{KEY_FILE}.{}", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(pem.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io)?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => TokenKey::from_pem(&pem, &path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pem = fs::read_to_string(&path).map_err(io)?;
                TokenKey::from_pem(&pem, &path)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_pem(pem: &str, path: &Path) -> Result<TokenKey, KeyError> {
        let invalid = |message: String| KeyError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|e| invalid(e.to_string()))?;
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let point = signing.verifying_key().to_encoded_point(false);
        let decoding = DecodingKey::from_ec_der(point.as_bytes());
        let kid = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(TokenKey {
            encoding,
            decoding,
            kid,
        })
    }

    /// The key ID tokens carry in their `kid` header (the key's RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("ES256 signing never fails")
    }

    /// Checks the signature, `kid`, `exp` and `nbf` (with [`LEEWAY_SECS`]), `iss` and `aud`.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Result<Claims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err("token signed by an unknown key".into());
        }
        let mut v = Validation::new(Algorithm::ES256);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}

fn generate_pem(path: &Path) -> Result<String, KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    // Almost every 32-byte string is a valid P-256 scalar; retry the rare ones that aren't.
    let signing = loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            break key;
        }
    };
    let pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(pem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "iss".into(),
            sub: "alice".into(),
            aud: "svc".into(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: "1".into(),
            access: vec![Scope::repository("acme/app", &[super::super::Action::Pull])],
        }
    }

    #[test]
    fn key_is_created_once_private_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = TokenKey::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.kid(), again.kid());
        let now = chrono::Utc::now().timestamp();
        let token = key.sign(&claims(now));
        assert_eq!(again.verify(&token, "iss", "svc").unwrap(), claims(now));
        assert!(again.verify(&token, "iss", "other").is_err());
        assert!(again.verify(&token, "other", "svc").is_err());
        let other = TokenKey::load_or_create(&dir.path().join("b")).unwrap();
        assert_ne!(other.kid(), key.kid());
        assert!(other.verify(&token, "iss", "svc").is_err());
    }
}
