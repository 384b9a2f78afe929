//! [`TokenAuthorizer`]: the multi-tenant [`Authorizer`], checking the token service's JWTs
//! (or Basic credentials) on every registry request.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::audit::AuditLog;
use super::config::AuthConfig;
use super::keys::{Claims, KeyError, TokenKey};
use super::policy::{Identity, grant, is_repository_name, org_of};
use super::store::{AccountStore, StoreError};
use super::{Action, AuditEvent, AuthError, Authorizer, Principal, Scope};

/// Why the token authoriser could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("audit log {path}: {source}")]
    Audit {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// An access token as the token endpoint hands it out.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
    pub expires_in: u64,
    /// RFC 3339.
    pub issued_at: String,
}

/// Accounts, the signing key and the audit log of one registry root.
#[derive(Debug)]
pub struct TokenAuthorizer {
    store: AccountStore,
    key: TokenKey,
    audit: AuditLog,
    realm: String,
    service: String,
    issuer: String,
    token_ttl_secs: u64,
    refresh_ttl_secs: u64,
}

impl TokenAuthorizer {
    /// Opens the accounts store, signing key (created on first start) and audit log under
    /// `root`. `realm` is the token endpoint's URL as clients reach it (see
    /// [`AuthConfig::realm_or`]).
    pub fn open(
        root: &Path,
        config: &AuthConfig,
        realm: String,
    ) -> Result<TokenAuthorizer, SetupError> {
        let store = AccountStore::open(root)?;
        let key = TokenKey::load_or_create(root)?;
        let audit = AuditLog::open(root).map_err(|source| SetupError::Audit {
            path: root.join(super::AUDIT_FILE),
            source,
        })?;
        Ok(TokenAuthorizer {
            store,
            key,
            audit,
            realm,
            service: config.service.clone(),
            issuer: config.issuer.clone(),
            token_ttl_secs: config.token_ttl_secs,
            refresh_ttl_secs: config.refresh_ttl_secs,
        })
    }

    pub fn store(&self) -> &AccountStore {
        &self.store
    }

    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn refresh_ttl_secs(&self) -> u64 {
        self.refresh_ttl_secs
    }

    /// The `WWW-Authenticate` value sending a client to the token endpoint for `needed`
    /// (no `scope` for the catalog scope, which is also the `/v2/` base check's).
    pub fn challenge(&self, needed: &Scope) -> String {
        let mut c = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.realm, self.service
        );
        if !is_catalog(needed) {
            c.push_str(&format!(",scope=\"{needed}\""));
        }
        c
    }

    fn unauthorized(&self, needed: &Scope, message: impl Into<String>) -> AuthError {
        AuthError::Unauthorized {
            challenge: self.challenge(needed),
            message: message.into(),
        }
    }

    fn denied(&self, needed: &Scope) -> AuthError {
        AuthError::Denied {
            challenge: self.challenge(needed),
        }
    }

    fn is_public(&self, repository: &str) -> bool {
        is_repository_name(repository)
            && self.store.is_public(repository).unwrap_or_else(|e| {
                tracing::error!(error = %e, "accounts store");
                false
            })
    }

    /// Whether `needed` is a pull (only) of a public repository, which needs no credentials.
    fn is_public_pull(&self, needed: &Scope) -> bool {
        needed.kind == "repository"
            && !needed.actions.is_empty()
            && needed.actions.iter().all(|a| a == "pull")
            && self.is_public(&needed.name)
    }

    /// The granted subset of each requested scope (those granted nothing are left out).
    pub fn grant_all(&self, identity: &Identity, requested: &[Scope]) -> Vec<Scope> {
        requested
            .iter()
            .filter_map(|s| grant(identity, s, |r| self.is_public(r)))
            .collect()
    }

    /// Signs an access token for `identity` carrying `access`, and records the grant.
    pub fn issue(&self, identity: &Identity, access: Vec<Scope>) -> IssuedToken {
        let now = chrono::Utc::now();
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: identity.subject().unwrap_or_default(),
            aud: self.service.clone(),
            exp: iat.saturating_add(i64::try_from(self.token_ttl_secs).unwrap_or(i64::MAX)),
            nbf: iat,
            iat,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        };
        self.record(AuditEvent::TokenGranted {
            subject: identity.subject(),
            scopes: claims.access.iter().map(Scope::to_string).collect(),
        });
        IssuedToken {
            token: self.key.sign(&claims),
            claims,
            expires_in: self.token_ttl_secs,
            issued_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Checks a login, recording a refusal. `Err` only when the store fails.
    pub fn login(
        &self,
        user: &str,
        secret: &str,
        context: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let identity = self.store.authenticate(user, secret)?;
        if identity.is_none() {
            self.record(AuditEvent::TokenRefused {
                subject: Some(user.to_string()),
                reason: format!("wrong user name or password ({context})"),
            });
        }
        Ok(identity)
    }

    fn bearer(&self, token: &str, needed: &Scope) -> Result<Principal, AuthError> {
        let claims = self
            .key
            .verify(token, &self.issuer, &self.service)
            .map_err(|e| self.unauthorized(needed, format!("invalid token: {e}")))?;
        let mut principal = Principal {
            subject: Some(claims.sub).filter(|s| !s.is_empty()),
            access: claims.access,
        };
        if covers(&principal, needed) {
            if is_catalog(needed) && !principal.access.contains(needed) {
                principal.access.push(needed.clone());
            }
            return Ok(principal);
        }
        if self.is_public_pull(needed) {
            principal.access.push(needed.clone());
            return Ok(principal);
        }
        match principal.subject {
            // An anonymous token lacking the scope: logging in may help.
            None => Err(self.unauthorized(needed, "authentication required")),
            Some(_) => Err(self.denied(needed)),
        }
    }

    fn basic(&self, encoded: &str, needed: &Scope) -> Result<Principal, AuthError> {
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, secret)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
            return Err(self.unauthorized(needed, "malformed basic credentials"));
        };
        let identity = match self.login(user, secret, "basic auth on a registry request") {
            Ok(Some(identity)) => identity,
            Ok(None) => return Err(self.unauthorized(needed, "invalid username or password")),
            Err(e) => {
                tracing::error!(error = %e, "accounts store");
                return Err(self.unauthorized(needed, "accounts unavailable"));
            }
        };
        let principal = Principal {
            subject: identity.subject(),
            access: grant(&identity, needed, |r| self.is_public(r))
                .into_iter()
                .collect(),
        };
        if covers(&principal, needed) {
            Ok(principal)
        } else {
            Err(self.denied(needed))
        }
    }
}

fn is_catalog(scope: &Scope) -> bool {
    scope.kind == "registry" && scope.name == "catalog"
}

/// Whether `principal` holds everything `needed` asks for. The catalog is open to any
/// authenticated principal (it is filtered with `can_see`), so `docker login`'s scope-less
/// token passes the `/v2/` base check.
fn covers(principal: &Principal, needed: &Scope) -> bool {
    match needed.kind.as_str() {
        "repository" => {
            !needed.actions.is_empty()
                && needed.actions.iter().all(|a| {
                    Action::parse(a).is_some_and(|action| principal.allows(&needed.name, action))
                })
        }
        _ if is_catalog(needed) => principal.subject.is_some(),
        _ => false,
    }
}

impl Authorizer for TokenAuthorizer {
    fn authorize(
        &self,
        authorization: Option<&str>,
        needed: &Scope,
    ) -> Result<Principal, AuthError> {
        let header = authorization.map(str::trim).filter(|h| !h.is_empty());
        let Some(header) = header else {
            if self.is_public_pull(needed) {
                return Ok(Principal {
                    subject: None,
                    access: vec![needed.clone()],
                });
            }
            return Err(self.unauthorized(needed, "authentication required"));
        };
        let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            self.bearer(value.trim(), needed)
        } else if scheme.eq_ignore_ascii_case("basic") {
            self.basic(value.trim(), needed)
        } else {
            Err(self.unauthorized(needed, "unsupported authorization scheme"))
        }
    }

    fn can_see(&self, principal: &Principal, repository: &str) -> bool {
        if !is_repository_name(repository) {
            return false;
        }
        let member = match (&principal.subject, org_of(repository)) {
            (Some(subject), Some(org)) => match self.store.identity(subject) {
                Ok(identity) => identity.is_some_and(|i| i.role_in(org).is_some()),
                Err(e) => {
                    tracing::error!(error = %e, "accounts store");
                    false
                }
            },
            _ => false,
        };
        member || self.is_public(repository)
    }

    fn record(&self, event: AuditEvent) {
        if let Err(e) = self.audit.append(event.clone()) {
            tracing::error!(error = %e, path = %self.audit.path().display(), ?event, "audit log");
        }
    }
}
