//! Authorisation as the API server sees it: every request needs a [`Scope`] on one
//! repository (or the catalog), and an [`Authorizer`] turns the request's `Authorization`
//! header into a [`Principal`] holding what was granted, or refuses with a challenge.
//!
//! The first path component of a repository is its organisation (`acme/app` belongs to
//! `acme`). Tokens are the Docker registry token flow's JWTs; their `access` claim is the
//! granted subset of the scopes asked for.
//!
//! The token authoriser ([`from_config`] with `mode = "token"`) keeps its state under the
//! registry root: `auth.redb` (accounts, see [`store`]), `auth-key.pem` (the ES256 signing
//! key, mode 0600) and `audit.log` (JSON lines, see [`audit`]). Rules (see [`policy`]):
//! pull needs role `pull` in the organisation or a public repository, push needs `push`,
//! delete needs `admin`; the catalog is open to any authenticated caller and filtered with
//! [`Authorizer::can_see`]. Names without a `/` belong to no organisation and, since only
//! `ORG/REPO` can be made public, nobody may use them.
//!
//! `authorize` may run argon2 (Basic credentials on a registry request, once per password
//! and process: verified passwords are remembered) and reads the accounts database, so it
//! blocks for up to tens of milliseconds.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod audit;
pub mod authorizer;
pub mod config;
pub mod keys;
pub mod policy;
pub mod store;
pub mod token;

pub use audit::{AUDIT_FILE, AuditLog, AuditRecord};
pub use authorizer::{SetupError, TokenAuthorizer};
pub use config::{AuthConfig, AuthMode};
pub use keys::{Claims, KEY_FILE, TokenKey};
pub use policy::{Identity, Role};
pub use store::{AccountStore, DB_FILE, MemberChange, OrgInfo, RobotInfo, StoreError};
pub use token::token_routes;

/// What the server needs from the `[auth]` section: the authoriser for every request, and
/// the routes to merge into its router (the token endpoint; none for `mode = "none"`).
pub struct AuthSetup {
    pub authorizer: Arc<dyn Authorizer>,
    pub routes: axum::Router,
}

/// Builds the authoriser `config` asks for, keeping its state under `root`. `default_realm`
/// is used when `config.realm` is unset (see [`AuthConfig::realm_or`]).
pub fn from_config(
    root: &Path,
    config: &AuthConfig,
    default_realm: &str,
) -> Result<AuthSetup, SetupError> {
    match config.mode {
        AuthMode::None => Ok(AuthSetup {
            authorizer: Arc::new(OpenAccess),
            routes: axum::Router::new(),
        }),
        AuthMode::Token => {
            let realm = config
                .realm
                .clone()
                .unwrap_or_else(|| default_realm.to_string());
            let auth = Arc::new(TokenAuthorizer::open(root, config, realm)?);
            Ok(AuthSetup {
                routes: token_routes(auth.clone()),
                authorizer: auth,
            })
        }
    }
}

/// What a request does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// A resource and the actions wanted on it, as in the token flow's `scope` parameter:
/// `repository:acme/app:pull,push` or `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name (`acme/app`), or `catalog`.
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    pub fn repository(name: &str, actions: &[Action]) -> Scope {
        Scope {
            kind: "repository".into(),
            name: name.to_string(),
            actions: actions.iter().map(|a| a.as_str().to_string()).collect(),
        }
    }

    pub fn catalog() -> Scope {
        Scope {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        }
    }

    /// Parses one scope string; `None` when malformed.
    pub fn parse(s: &str) -> Option<Scope> {
        let (kind, rest) = s.split_once(':')?;
        // Names may contain ':' only as a registry port, which repository scopes never carry;
        // the actions are after the last ':'.
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Scope {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// Who made a request and what they were granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The user or robot name; `None` for anonymous access.
    pub subject: Option<String>,
    /// Granted scopes (from the token's `access` claim, or computed for anonymous access).
    pub access: Vec<Scope>,
}

impl Principal {
    /// Whether `action` on `repository` was granted.
    pub fn allows(&self, repository: &str, action: Action) -> bool {
        self.access.iter().any(|s| {
            s.kind == "repository"
                && s.name == repository
                && s.actions.iter().any(|a| a == action.as_str() || a == "*")
        })
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No or invalid credentials: answer 401 with this `WWW-Authenticate` value.
    #[error("authentication required")]
    Unauthorized { challenge: String, message: String },
    /// Valid credentials without the needed access: 403 (`DENIED`), with a challenge so a
    /// client can ask for a token with more scopes.
    #[error("requested access to the resource is denied")]
    Denied { challenge: String },
}

/// Something a tenant did that the append-only audit log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    Push {
        subject: Option<String>,
        repository: String,
        reference: String,
        digest: String,
    },
    Delete {
        subject: Option<String>,
        repository: String,
        reference: String,
    },
    TokenGranted {
        subject: Option<String>,
        scopes: Vec<String>,
    },
    TokenRefused {
        subject: Option<String>,
        reason: String,
    },
}

/// Decides every request. Implementations: [`OpenAccess`] (no auth, for tests and
/// single-tenant use) and the token authoriser of this module.
pub trait Authorizer: Send + Sync + 'static {
    /// Checks `authorization` (the raw `Authorization` header, if any) against `needed`.
    /// Anonymous requests pass for pulls of public repositories.
    fn authorize(
        &self,
        authorization: Option<&str>,
        needed: &Scope,
    ) -> Result<Principal, AuthError>;

    /// Whether `principal` may learn that `repository` exists (for `_catalog`): members of
    /// its organisation, and everyone for public repositories.
    fn can_see(&self, principal: &Principal, repository: &str) -> bool;

    /// Appends to the audit log.
    fn record(&self, event: AuditEvent);
}

/// Grants everything to everyone. Only for tests and closed single-user setups.
#[derive(Debug, Default, Clone)]
pub struct OpenAccess;

impl Authorizer for OpenAccess {
    fn authorize(
        &self,
        _authorization: Option<&str>,
        needed: &Scope,
    ) -> Result<Principal, AuthError> {
        Ok(Principal {
            subject: None,
            access: vec![needed.clone()],
        })
    }

    fn can_see(&self, _principal: &Principal, _repository: &str) -> bool {
        true
    }

    fn record(&self, event: AuditEvent) {
        tracing::info!(?event, "audit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s = Scope::parse("repository:acme/app:pull,push").unwrap();
        assert_eq!(s.name, "acme/app");
        assert_eq!(s.actions, ["pull", "push"]);
        assert_eq!(s.to_string(), "repository:acme/app:pull,push");
        assert_eq!(
            Scope::parse("registry:catalog:*").unwrap(),
            Scope::catalog()
        );
        assert!(Scope::parse("nonsense").is_none());
        let p = Principal {
            subject: None,
            access: vec![s],
        };
        assert!(p.allows("acme/app", Action::Push));
        assert!(!p.allows("acme/app", Action::Delete));
        assert!(!p.allows("other/app", Action::Pull));
    }
}
