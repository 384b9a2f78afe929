//! `POST /auth` and the credentials clients send with pulls.

use base64::Engine as _;
use berth_api::types::{AuthConfig, AuthResponse};
use berth_distribution::Credentials;
use berth_distribution::endpoint::normalize_registry;

use super::ImageService;
use super::pull::distribution_error;
use crate::error::{EngineError, Result};

/// Registry credentials from the API's auth object (`username`/`password`, the combined
/// `auth` field, or tokens). An object without any credential — clients send
/// `{"serveraddress": …}` when nothing is stored — means anonymous access: `None`.
pub fn credentials_from(a: &AuthConfig) -> Option<Credentials> {
    let (mut username, mut password) = (
        a.username.clone().unwrap_or_default(),
        a.password.clone().unwrap_or_default(),
    );
    if username.is_empty()
        && let Some(decoded) = a
            .auth
            .as_deref()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok())
        && let Some((u, p)) = decoded.split_once(':')
    {
        username = u.to_string();
        password = p.to_string();
    }
    let creds = Credentials {
        username,
        password,
        identity_token: a.identitytoken.clone().filter(|t| !t.is_empty()),
        registry_token: a.registrytoken.clone().filter(|t| !t.is_empty()),
    };
    let any = !creds.username.is_empty()
        || !creds.password.is_empty()
        || creds.identity_token.is_some()
        || creds.registry_token.is_some();
    any.then_some(creds)
}

impl ImageService {
    /// Checks credentials against a registry, as `docker login` asks the daemon to.
    pub async fn login(&self, auth: AuthConfig) -> Result<AuthResponse> {
        let server = auth
            .serveraddress
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "https://index.docker.io/v1/".into());
        let registry = normalize_registry(&server);
        let Some(creds) = credentials_from(&auth).filter(|c| {
            !c.username.is_empty() || c.identity_token.is_some() || c.registry_token.is_some()
        }) else {
            return Err(EngineError::invalid("Error: Username is required"));
        };
        let token = self
            .registry
            .login(&registry, &creds)
            .await
            .map_err(distribution_error)?;
        Ok(AuthResponse {
            status: "Login Succeeded".into(),
            identity_token: token.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_auth_objects_are_anonymous() {
        let empty = AuthConfig {
            serveraddress: Some("127.0.0.1:5000".into()),
            ..Default::default()
        };
        assert!(credentials_from(&empty).is_none());
        let blank = AuthConfig {
            username: Some(String::new()),
            identitytoken: Some(String::new()),
            ..Default::default()
        };
        assert!(credentials_from(&blank).is_none());
        let combined = AuthConfig {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("u:p")),
            ..Default::default()
        };
        let c = credentials_from(&combined).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let token = AuthConfig {
            identitytoken: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            credentials_from(&token).unwrap().identity_token.as_deref(),
            Some("t")
        );
    }
}
