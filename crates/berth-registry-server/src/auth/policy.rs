//! Who may do what: names, identities and the grant rules.
//!
//! A repository belongs to the organisation named by its first path component
//! (`acme/team/app` belongs to `acme`). A name without a `/` belongs to no organisation,
//! and since only `ORG/REPO` names can be made public, such repositories are reachable by
//! nobody (the registry refuses them for everyone under token auth).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Action, Scope};

/// A member's (or robot token's) role in one organisation; each includes the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pull the organisation's repositories.
    Pull,
    /// Also push to them.
    Push,
    /// Also delete manifests, tags and blobs.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pull => "pull",
            Role::Push => "push",
            Role::Admin => "admin",
        }
    }

    /// The least role that allows `action`.
    pub fn needed_for(action: Action) -> Role {
        match action {
            Action::Pull => Role::Pull,
            Action::Push => Role::Push,
            Action::Delete => Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "pull" => Ok(Role::Pull),
            "push" => Ok(Role::Push),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("unknown role {s:?} (expected pull, push or admin)")),
        }
    }
}

/// Who a request or a token request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    /// A user, with its role in each organisation it belongs to.
    User {
        name: String,
        roles: BTreeMap<String, Role>,
    },
    /// A robot token of one organisation; its subject is `org+name`.
    Robot {
        org: String,
        name: String,
        role: Role,
    },
}

impl Identity {
    /// The token's `sub`: the user name, `org+robot`, or `None` for anonymous.
    pub fn subject(&self) -> Option<String> {
        match self {
            Identity::Anonymous => None,
            Identity::User { name, .. } => Some(name.clone()),
            Identity::Robot { org, name, .. } => Some(robot_subject(org, name)),
        }
    }

    /// The identity's role in `org`, if it has one.
    pub fn role_in(&self, org: &str) -> Option<Role> {
        match self {
            Identity::Anonymous => None,
            Identity::User { roles, .. } => roles.get(org).copied(),
            Identity::Robot { org: own, role, .. } => (own == org).then_some(*role),
        }
    }
}

/// The login name and token subject of robot `name` of `org`.
pub fn robot_subject(org: &str, name: &str) -> String {
    format!("{org}+{name}")
}

/// The organisation `repository` belongs to: its first path component, when it has more
/// than one.
pub fn org_of(repository: &str) -> Option<&str> {
    repository.split_once('/').map(|(org, _)| org)
}

/// One path component of a repository name, as the Distribution spec defines it:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_name_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let (mut i, n) = (0, b.len());
    loop {
        let start = i;
        while i < n && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == n {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while i < n && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// A valid repository name: components joined by `/`, at most 255 bytes.
pub fn is_repository_name(s: &str) -> bool {
    s.len() <= 255 && s.split('/').all(is_name_component)
}

/// Organisation and robot names: one repository name component, at most 64 bytes.
pub fn is_org_name(s: &str) -> bool {
    s.len() <= 64 && is_name_component(s)
}

/// User names: letters, digits, `.`, `_`, `-` and `@`, starting with a letter or digit,
/// at most 128 bytes. Never `+` (robots) nor `:` (Basic auth).
pub fn is_user_name(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    s.len() <= 128 && s.starts_with(|c: char| c.is_ascii_alphanumeric()) && s.chars().all(ok)
}

/// The part of `requested` that `identity` may have, or `None` if nothing.
///
/// `repository:ORG/REPO:…`: pull with role ≥ pull in ORG or when the repository is public
/// (`is_public` is asked only then); push with role ≥ push; delete with admin. `*` asks for
/// all three. `registry:catalog:*`: any authenticated identity (the catalog is filtered
/// per repository with `can_see`). Anything else: nothing.
pub fn grant(
    identity: &Identity,
    requested: &Scope,
    is_public: impl FnOnce(&str) -> bool,
) -> Option<Scope> {
    match requested.kind.as_str() {
        "repository" => {
            if !is_repository_name(&requested.name) {
                return None;
            }
            let role = org_of(&requested.name).and_then(|org| identity.role_in(org));
            let mut wanted: Vec<Action> = Vec::new();
            for a in &requested.actions {
                let actions = match a.as_str() {
                    "*" => vec![Action::Pull, Action::Push, Action::Delete],
                    other => Action::parse(other).into_iter().collect(),
                };
                for action in actions {
                    if !wanted.contains(&action) {
                        wanted.push(action);
                    }
                }
            }
            let mut public = None;
            let mut is_public = Some(is_public);
            let granted: Vec<Action> = wanted
                .into_iter()
                .filter(|&action| {
                    if role.is_some_and(|r| r >= Role::needed_for(action)) {
                        return true;
                    }
                    action == Action::Pull
                        && *public.get_or_insert_with(|| {
                            is_public.take().is_some_and(|f| f(&requested.name))
                        })
                })
                .collect();
            (!granted.is_empty()).then(|| Scope::repository(&requested.name, &granted))
        }
        "registry"
            if requested.name == "catalog"
                && requested.actions.iter().any(|a| a == "*")
                && identity != &Identity::Anonymous =>
        {
            Some(Scope::catalog())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[(&str, Role)]) -> Identity {
        Identity::User {
            name: "u".into(),
            roles: roles.iter().map(|(o, r)| (o.to_string(), *r)).collect(),
        }
    }

    fn asked(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn names() {
        for ok in ["a", "acme", "a.b", "a_b", "a__b", "a---b", "0x"] {
            assert!(is_name_component(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a___b", "a/b", "a b", "a:b"] {
            assert!(!is_name_component(bad), "{bad}");
        }
        assert!(is_repository_name("acme/team/app"));
        assert!(!is_repository_name("acme//app"));
        assert!(!is_repository_name("acme/App"));
        assert!(is_user_name("alice@example.com"));
        assert!(!is_user_name("acme+ci"));
        assert!(!is_user_name("a:b"));
        assert_eq!(org_of("acme/team/app"), Some("acme"));
        assert_eq!(org_of("app"), None);
    }

    #[test]
    fn grants_follow_roles() {
        let never = |_: &str| -> bool { panic!("public asked") };
        let g = |id: &Identity, s: &str, public: bool| {
            grant(id, &asked(s), |_| public).map(|s| s.actions.join(","))
        };
        let puller = user(&[("acme", Role::Pull)]);
        assert_eq!(
            g(&puller, "repository:acme/app:pull,push", false).as_deref(),
            Some("pull")
        );
        assert_eq!(g(&puller, "repository:acme/app:push", false), None);
        let pusher = user(&[("acme", Role::Push)]);
        assert_eq!(
            g(&pusher, "repository:acme/app:pull,push,delete", false).unwrap(),
            "pull,push"
        );
        let admin = user(&[("acme", Role::Admin)]);
        assert_eq!(
            g(&admin, "repository:acme/a/b:*", false).unwrap(),
            "pull,push,delete"
        );
        assert_eq!(
            grant(&admin, &asked("repository:acme/app:pull"), never)
                .unwrap()
                .actions,
            ["pull"]
        );
        // Other organisations, top-level names, bad names, unknown kinds: nothing.
        assert_eq!(g(&admin, "repository:globex/app:pull,push", false), None);
        assert_eq!(g(&admin, "repository:acme:pull", false), None);
        assert_eq!(g(&admin, "repository:Acme/app:pull", true), None);
        assert_eq!(g(&admin, "other:acme/app:pull", true), None);
        // Public repositories: pull only, for anyone.
        assert_eq!(
            g(&Identity::Anonymous, "repository:acme/pub:pull,push", true).unwrap(),
            "pull"
        );
        assert_eq!(
            g(&Identity::Anonymous, "repository:acme/pub:push", true),
            None
        );
        assert_eq!(
            g(&Identity::Anonymous, "repository:acme/app:pull", false),
            None
        );
        // A robot acts only in its own organisation.
        let robot = Identity::Robot {
            org: "acme".into(),
            name: "ci".into(),
            role: Role::Push,
        };
        assert_eq!(robot.subject().unwrap(), "acme+ci");
        assert_eq!(
            g(&robot, "repository:acme/app:pull,push", false).unwrap(),
            "pull,push"
        );
        assert_eq!(g(&robot, "repository:globex/app:pull", false), None);
        // The catalog: any authenticated identity.
        assert_eq!(g(&puller, "registry:catalog:*", false).unwrap(), "*");
        assert_eq!(g(&Identity::Anonymous, "registry:catalog:*", true), None);
    }
}
