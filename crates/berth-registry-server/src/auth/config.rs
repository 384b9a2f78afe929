//! The `[auth]` section of the registry's TOML configuration.

use serde::{Deserialize, Serialize};

/// Which [`Authorizer`](super::Authorizer) the server runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Accounts, the token service and per-organisation roles (the default).
    #[default]
    Token,
    /// [`OpenAccess`](super::OpenAccess): everything is allowed to everyone. Tests only.
    None,
}

/// `[auth]`: how requests are authorised.
///
/// ```toml
/// [auth]
/// mode = "token"                          # or "none"
/// realm = "https://registry.example/token" # default: http(s)://<listen addr>/token
/// service = "berth-registry"
/// issuer = "berth-registry"
/// token_ttl_secs = 300
/// refresh_ttl_secs = 2592000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The token endpoint clients are sent to in `WWW-Authenticate`. `None`: derived from
    /// the listen address (see [`AuthConfig::realm_or`]), which clients can't reach when it
    /// is `0.0.0.0` or behind a proxy: set it to the public URL there.
    pub realm: Option<String>,
    /// The `service` clients name when asking for tokens; the tokens' audience.
    pub service: String,
    /// The tokens' `iss`.
    pub issuer: String,
    /// Lifetime of access tokens, in seconds.
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens (`access_type=offline`), in seconds.
    pub refresh_ttl_secs: u64,
}

pub const DEFAULT_SERVICE: &str = "berth-registry";
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;
pub const DEFAULT_REFRESH_TTL_SECS: u64 = 30 * 24 * 3600;

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Token,
            realm: None,
            service: DEFAULT_SERVICE.into(),
            issuer: DEFAULT_SERVICE.into(),
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            refresh_ttl_secs: DEFAULT_REFRESH_TTL_SECS,
        }
    }
}

impl AuthConfig {
    /// The configured realm, or `http(s)://<addr>/token` for a server listening on `addr`
    /// (`host:port` as clients reach it).
    pub fn realm_or(&self, addr: &str, tls: bool) -> String {
        match &self.realm {
            Some(realm) => realm.clone(),
            None => format!("{}://{addr}/token", if tls { "https" } else { "http" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults() {
        let c: AuthConfig = toml::from_str("mode = \"none\"").unwrap();
        assert_eq!(c.mode, AuthMode::None);
        assert_eq!(c.service, "berth-registry");
        assert_eq!(c.token_ttl_secs, 300);
        assert_eq!(
            c.realm_or("127.0.0.1:5000", false),
            "http://127.0.0.1:5000/token"
        );
        let c: AuthConfig = toml::from_str("realm = \"https://r/token\"").unwrap();
        assert_eq!(c.mode, AuthMode::Token);
        assert_eq!(c.realm_or("x:1", false), "https://r/token");
        assert!(toml::from_str::<AuthConfig>("mode = \"maybe\"").is_err());
        assert!(toml::from_str::<AuthConfig>("colour = 1").is_err());
    }
}
