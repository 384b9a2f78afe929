//! Accounts in one redb file under the registry root (`auth.redb`): organisations, users
//! with per-organisation roles, robot tokens, public repositories and refresh tokens.
//!
//! The file is opened in redb's multi-writer mode so `berth-registry admin` can change
//! accounts while the server runs; every change is one transaction.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::{Identity, Role, is_org_name, is_repository_name, is_user_name, org_of};

pub const DB_FILE: &str = "auth.redb";

const ORGS: TableDefinition<&str, &[u8]> = TableDefinition::new("orgs");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Keyed by `org+name`.
const ROBOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("robots");
/// `org/repo` → when it was made public.
const PUBLIC: TableDefinition<&str, i64> = TableDefinition::new("public_repos");
/// SHA-256 (hex) of the refresh token → its record.
const REFRESH: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_tokens");

/// A robot's `last_used` is written at most this often (seconds), so that robots sending
/// Basic credentials on every registry request don't turn each one into a commit.
const LAST_USED_GRANULARITY: i64 = 60;
/// Verified (password hash, password) pairs remembered, so Basic auth on every registry
/// request doesn't run argon2 each time.
const VERIFIED_CACHE_MAX: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("accounts database {path}: {message}")]
    Database { path: PathBuf, message: String },
    #[error("invalid {what} {name:?}")]
    InvalidName { what: &'static str, name: String },
    #[error("no such {what}: {name}")]
    NotFound { what: &'static str, name: String },
    #[error("{what} {name} already exists")]
    Exists { what: &'static str, name: String },
    #[error("a password is needed to create user {0}")]
    PasswordNeeded(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("corrupt record {key}: {message}")]
    Corrupt { key: String, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrgRecord {
    created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserRecord {
    password_hash: String,
    roles: BTreeMap<String, Role>,
    created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RobotRecord {
    info: RobotInfo,
    secret_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    subject: String,
    created: i64,
    expires: i64,
}

/// An organisation as `org list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgInfo {
    pub name: String,
    pub created: i64,
    pub members: usize,
    pub robots: usize,
    pub public_repositories: usize,
}

/// A robot token as `token list` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotInfo {
    pub org: String,
    pub name: String,
    pub role: Role,
    /// Seconds since the epoch.
    pub created: i64,
    pub last_used: Option<i64>,
}

/// What [`AccountStore::add_member`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// A new user, with this membership.
    UserCreated,
    /// An existing user joined the organisation.
    Added,
    /// The user was a member already; the role is now the one given.
    RoleSet,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Seconds since the epoch as `2025-01-31 12:00:00 UTC`, for listings.
pub fn format_timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// Whether `password` matches a hash made by [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// 32 random bytes, base64url: robot secrets and refresh tokens.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check(ok: bool, what: &'static str, name: &str) -> Result<(), StoreError> {
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            what,
            name: name.to_string(),
        })
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// Organisations, users, robots, public repositories and refresh tokens.
pub struct AccountStore {
    db: Database,
    path: PathBuf,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountStore")
            .field("path", &self.path)
            .finish()
    }
}

impl AccountStore {
    /// Opens (creating if needed) `<root>/auth.redb`.
    pub fn open(root: &Path) -> Result<AccountStore, StoreError> {
        let path = root.join(DB_FILE);
        let err = |message: String| StoreError::Database {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(root).map_err(|e| err(e.to_string()))?;
        // Password hashes live here: readable by the registry's user only.
        if let Ok(f) = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            drop(f);
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| err(e.to_string()))?;
        let store = AccountStore {
            db,
            path: path.clone(),
            verified: Mutex::default(),
        };
        store.write(|txn| {
            txn.open_table(ORGS)?;
            txn.open_table(USERS)?;
            txn.open_table(ROBOTS)?;
            txn.open_table(PUBLIC)?;
            txn.open_table(REFRESH)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            message: e.into().to_string(),
        }
    }

    /// Runs `f` in one write transaction, committed if it succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, TxnError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.db_err(e))?;
        let out = f(&txn).map_err(|e| self.txn_err(e))?;
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok(out)
    }

    /// Runs `f` over one read transaction.
    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, TxnError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        f(&txn).map_err(|e| self.txn_err(e))
    }

    fn txn_err(&self, e: TxnError) -> StoreError {
        match e {
            TxnError::Db(e) => self.db_err(e),
            TxnError::Store(e) => e,
        }
    }

    // Organisations.

    pub fn create_org(&self, org: &str) -> Result<(), StoreError> {
        check(is_org_name(org), "organisation name", org)?;
        self.write(|txn| {
            let mut orgs = txn.open_table(ORGS)?;
            if orgs.get(org)?.is_some() {
                return Err(exists("organisation", org));
            }
            orgs.insert(org, encode(&OrgRecord { created: now() }).as_slice())?;
            Ok(())
        })
    }

    /// Deletes an organisation with its memberships, robots and public marks (not the
    /// images stored under its name). Users left without any organisation are deleted.
    pub fn delete_org(&self, org: &str) -> Result<(), StoreError> {
        self.write(|txn| {
            if txn.open_table(ORGS)?.remove(org)?.is_none() {
                return Err(not_found("organisation", org));
            }
            let mut gone_subjects = Vec::new();
            let mut users = txn.open_table(USERS)?;
            for (name, mut rec) in all::<UserRecord>(&users)? {
                if rec.roles.remove(org).is_some() {
                    if rec.roles.is_empty() {
                        users.remove(name.as_str())?;
                        gone_subjects.push(name);
                    } else {
                        users.insert(name.as_str(), encode(&rec).as_slice())?;
                    }
                }
            }
            let mut robots = txn.open_table(ROBOTS)?;
            for (key, rec) in all::<RobotRecord>(&robots)? {
                if rec.info.org == org {
                    robots.remove(key.as_str())?;
                    gone_subjects.push(key);
                }
            }
            let mut public = txn.open_table(PUBLIC)?;
            let prefix = format!("{org}/");
            let names: Vec<String> = public
                .range(prefix.as_str()..)?
                .map(|row| row.map(|(k, _)| k.value().to_string()))
                .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(&prefix)))
                .collect::<Result<_, _>>()?;
            for name in names {
                public.remove(name.as_str())?;
            }
            forget_refresh_tokens(txn, &gone_subjects)
        })
    }

    pub fn list_orgs(&self) -> Result<Vec<OrgInfo>, StoreError> {
        self.read(|txn| {
            let users: Vec<(String, UserRecord)> = all(&txn.open_table(USERS)?)?;
            let robots: Vec<(String, RobotRecord)> = all(&txn.open_table(ROBOTS)?)?;
            let public: Vec<String> = keys(&txn.open_table(PUBLIC)?)?;
            let orgs: Vec<(String, OrgRecord)> = all(&txn.open_table(ORGS)?)?;
            Ok(orgs
                .into_iter()
                .map(|(name, rec)| OrgInfo {
                    members: users
                        .iter()
                        .filter(|(_, u)| u.roles.contains_key(&name))
                        .count(),
                    robots: robots.iter().filter(|(_, r)| r.info.org == name).count(),
                    public_repositories: public
                        .iter()
                        .filter(|r| org_of(r) == Some(name.as_str()))
                        .count(),
                    created: rec.created,
                    name,
                })
                .collect())
        })
    }

    pub fn org_exists(&self, org: &str) -> Result<bool, StoreError> {
        self.read(|txn| Ok(txn.open_table(ORGS)?.get(org)?.is_some()))
    }

    // Users.

    pub fn user_exists(&self, user: &str) -> Result<bool, StoreError> {
        self.read(|txn| Ok(txn.open_table(USERS)?.get(user)?.is_some()))
    }

    /// Gives `user` `role` in `org`. A new user needs `password`; for an existing one it
    /// is ignored (use [`AccountStore::set_password`]).
    pub fn add_member(
        &self,
        org: &str,
        user: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<MemberChange, StoreError> {
        check(is_user_name(user), "user name", user)?;
        let existing = self.read(|txn| get::<UserRecord>(&txn.open_table(USERS)?, user))?;
        // Hash outside the write transaction: argon2 takes a while.
        let new_hash = match (&existing, password) {
            (Some(_), _) => None,
            (None, Some(pw)) if !pw.is_empty() => Some(hash_password(pw)?),
            (None, _) => return Err(StoreError::PasswordNeeded(user.to_string())),
        };
        self.write(|txn| {
            if txn.open_table(ORGS)?.get(org)?.is_none() {
                return Err(not_found("organisation", org));
            }
            let mut users = txn.open_table(USERS)?;
            let current = get::<UserRecord>(&users, user)?;
            let (mut rec, change) = match (current, &new_hash) {
                (Some(rec), _) => {
                    let change = if rec.roles.contains_key(org) {
                        MemberChange::RoleSet
                    } else {
                        MemberChange::Added
                    };
                    (rec, change)
                }
                (None, Some(hash)) => (
                    UserRecord {
                        password_hash: hash.clone(),
                        roles: BTreeMap::new(),
                        created: now(),
                    },
                    MemberChange::UserCreated,
                ),
                // Deleted between the read and this transaction.
                (None, None) => {
                    return Err(TxnError::Store(StoreError::PasswordNeeded(
                        user.to_string(),
                    )));
                }
            };
            rec.roles.insert(org.to_string(), role);
            users.insert(user, encode(&rec).as_slice())?;
            Ok(change)
        })
    }

    /// Removes `user` from `org`; a user left in no organisation is deleted.
    pub fn remove_member(&self, org: &str, user: &str) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let Some(mut rec) = get::<UserRecord>(&users, user)? else {
                return Err(not_found("user", user));
            };
            if rec.roles.remove(org).is_none() {
                return Err(not_found("member", &format!("{user} in {org}")));
            }
            if rec.roles.is_empty() {
                users.remove(user)?;
                drop(users);
                forget_refresh_tokens(txn, &[user.to_string()])?;
            } else {
                users.insert(user, encode(&rec).as_slice())?;
            }
            Ok(())
        })
    }

    /// Sets a new password and revokes the user's refresh tokens.
    pub fn set_password(&self, user: &str, password: &str) -> Result<(), StoreError> {
        if password.is_empty() {
            return Err(StoreError::PasswordNeeded(user.to_string()));
        }
        let hash = hash_password(password)?;
        self.write(|txn| {
            let mut users = txn.open_table(USERS)?;
            let Some(mut rec) = get::<UserRecord>(&users, user)? else {
                return Err(not_found("user", user));
            };
            rec.password_hash = hash;
            users.insert(user, encode(&rec).as_slice())?;
            drop(users);
            forget_refresh_tokens(txn, &[user.to_string()])
        })
    }

    /// The members of `org` with their roles.
    pub fn members(&self, org: &str) -> Result<Vec<(String, Role)>, StoreError> {
        self.read(|txn| {
            let users: Vec<(String, UserRecord)> = all(&txn.open_table(USERS)?)?;
            Ok(users
                .into_iter()
                .filter_map(|(n, u)| u.roles.get(org).map(|r| (n, *r)))
                .collect())
        })
    }

    // Robot tokens.

    /// Creates robot `name` in `org` and returns its secret, which is not stored and
    /// cannot be shown again. It logs in as `org+name`.
    pub fn create_robot(&self, org: &str, name: &str, role: Role) -> Result<String, StoreError> {
        check(is_org_name(name), "robot name", name)?;
        let secret = random_secret();
        let key = super::policy::robot_subject(org, name);
        self.write(|txn| {
            if txn.open_table(ORGS)?.get(org)?.is_none() {
                return Err(not_found("organisation", org));
            }
            let mut robots = txn.open_table(ROBOTS)?;
            if robots.get(key.as_str())?.is_some() {
                return Err(exists("robot token", &key));
            }
            let rec = RobotRecord {
                info: RobotInfo {
                    org: org.to_string(),
                    name: name.to_string(),
                    role,
                    created: now(),
                    last_used: None,
                },
                secret_sha256: sha256_hex(secret.as_bytes()),
            };
            robots.insert(key.as_str(), encode(&rec).as_slice())?;
            Ok(())
        })?;
        Ok(secret)
    }

    /// Deletes a robot token; requests with its secret or its tokens' refresh tokens fail
    /// from now on (access tokens already issued live until they expire).
    pub fn revoke_robot(&self, org: &str, name: &str) -> Result<(), StoreError> {
        let key = super::policy::robot_subject(org, name);
        self.write(|txn| {
            if txn.open_table(ROBOTS)?.remove(key.as_str())?.is_none() {
                return Err(not_found("robot token", &key));
            }
            forget_refresh_tokens(txn, std::slice::from_ref(&key))
        })
    }

    pub fn list_robots(&self, org: &str) -> Result<Vec<RobotInfo>, StoreError> {
        self.read(|txn| {
            let robots: Vec<(String, RobotRecord)> = all(&txn.open_table(ROBOTS)?)?;
            Ok(robots
                .into_iter()
                .map(|(_, r)| r.info)
                .filter(|i| i.org == org)
                .collect())
        })
    }

    // Public repositories.

    /// Marks `org/repo` public (anonymous pull) or private again.
    pub fn set_public(&self, repository: &str, public: bool) -> Result<(), StoreError> {
        let org = org_of(repository)
            .filter(|_| is_repository_name(repository))
            .ok_or_else(|| StoreError::InvalidName {
                what: "repository name (ORG/REPO)",
                name: repository.to_string(),
            })?;
        self.write(|txn| {
            if txn.open_table(ORGS)?.get(org)?.is_none() {
                return Err(not_found("organisation", org));
            }
            let mut t = txn.open_table(PUBLIC)?;
            if public {
                t.insert(repository, now())?;
            } else {
                t.remove(repository)?;
            }
            Ok(())
        })
    }

    pub fn is_public(&self, repository: &str) -> Result<bool, StoreError> {
        self.read(|txn| Ok(txn.open_table(PUBLIC)?.get(repository)?.is_some()))
    }

    pub fn public_repositories(&self) -> Result<Vec<String>, StoreError> {
        self.read(|txn| keys(&txn.open_table(PUBLIC)?))
    }

    // Credentials.

    /// Checks a login (a user and password, or `org+robot` and secret). `None`: no such
    /// account or the wrong secret.
    pub fn authenticate(&self, login: &str, secret: &str) -> Result<Option<Identity>, StoreError> {
        if login.contains('+') {
            return self.authenticate_robot(login, secret);
        }
        let Some(rec) = self.read(|txn| get::<UserRecord>(&txn.open_table(USERS)?, login))? else {
            // Spend the time a real check takes, so timing doesn't reveal which users exist.
            let _ = verify_password(secret, dummy_hash());
            return Ok(None);
        };
        let fingerprint: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(rec.password_hash.as_bytes());
            h.update([0]);
            h.update(secret.as_bytes());
            h.finalize().into()
        };
        let cached = self
            .verified
            .lock()
            .expect("cache lock")
            .contains(&fingerprint);
        if !cached {
            if !verify_password(secret, &rec.password_hash) {
                return Ok(None);
            }
            let mut cache = self.verified.lock().expect("cache lock");
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(fingerprint);
        }
        Ok(Some(Identity::User {
            name: login.to_string(),
            roles: rec.roles,
        }))
    }

    fn authenticate_robot(
        &self,
        login: &str,
        secret: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let Some(rec) = self.read(|txn| get::<RobotRecord>(&txn.open_table(ROBOTS)?, login))?
        else {
            return Ok(None);
        };
        let presented = sha256_hex(secret.as_bytes());
        if !constant_time_eq(presented.as_bytes(), rec.secret_sha256.as_bytes()) {
            return Ok(None);
        }
        let t = now();
        if rec
            .info
            .last_used
            .is_none_or(|last| t - last >= LAST_USED_GRANULARITY)
        {
            self.write(|txn| {
                let mut robots = txn.open_table(ROBOTS)?;
                // Re-read: it may have been revoked meanwhile.
                if let Some(mut rec) = get::<RobotRecord>(&robots, login)? {
                    rec.info.last_used = Some(t);
                    robots.insert(login, encode(&rec).as_slice())?;
                }
                Ok(())
            })?;
        }
        let RobotInfo {
            org, name, role, ..
        } = rec.info;
        Ok(Some(Identity::Robot { org, name, role }))
    }

    /// The current identity behind a token subject (a user or `org+robot`), `None` if it
    /// no longer exists.
    pub fn identity(&self, subject: &str) -> Result<Option<Identity>, StoreError> {
        self.read(|txn| {
            if subject.contains('+') {
                let rec = get::<RobotRecord>(&txn.open_table(ROBOTS)?, subject)?;
                Ok(rec.map(|r| Identity::Robot {
                    org: r.info.org,
                    name: r.info.name,
                    role: r.info.role,
                }))
            } else {
                let rec = get::<UserRecord>(&txn.open_table(USERS)?, subject)?;
                Ok(rec.map(|r| Identity::User {
                    name: subject.to_string(),
                    roles: r.roles,
                }))
            }
        })
    }

    // Refresh tokens.

    /// Issues a refresh token for `subject`, valid `ttl_secs`; only its hash is kept.
    pub fn issue_refresh_token(&self, subject: &str, ttl_secs: u64) -> Result<String, StoreError> {
        let token = random_secret();
        let created = now();
        let rec = RefreshRecord {
            subject: subject.to_string(),
            created,
            expires: created.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
        };
        self.write(|txn| {
            let mut t = txn.open_table(REFRESH)?;
            // Drop expired ones on the way.
            let stale: Vec<String> = all::<RefreshRecord>(&t)?
                .into_iter()
                .filter(|(_, r)| r.expires <= created)
                .map(|(k, _)| k)
                .collect();
            for k in stale {
                t.remove(k.as_str())?;
            }
            t.insert(
                sha256_hex(token.as_bytes()).as_str(),
                encode(&rec).as_slice(),
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The subject a refresh token was issued to, if it is known and unexpired.
    pub fn redeem_refresh_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let key = sha256_hex(token.as_bytes());
        let rec = self.read(|txn| get::<RefreshRecord>(&txn.open_table(REFRESH)?, &key))?;
        Ok(rec.filter(|r| r.expires > now()).map(|r| r.subject))
    }
}

/// An argon2id hash of a random password, checked against when a user doesn't exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

/// Errors inside a transaction: redb's, or a refusal of ours.
enum TxnError {
    Db(redb::Error),
    Store(StoreError),
}

impl<E: Into<redb::Error>> From<E> for TxnError {
    fn from(e: E) -> Self {
        TxnError::Db(e.into())
    }
}

fn exists(what: &'static str, name: &str) -> TxnError {
    TxnError::Store(StoreError::Exists {
        what,
        name: name.to_string(),
    })
}

fn not_found(what: &'static str, name: &str) -> TxnError {
    TxnError::Store(StoreError::NotFound {
        what,
        name: name.to_string(),
    })
}

fn get<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, TxnError> {
    match table.get(key)? {
        Some(v) => decode(key, v.value()).map(Some).map_err(TxnError::Store),
        None => Ok(None),
    }
}

fn all<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<(String, T)>, TxnError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let key = k.value().to_string();
        let rec = decode(&key, v.value()).map_err(TxnError::Store)?;
        out.push((key, rec));
    }
    Ok(out)
}

fn keys<V: redb::Value + 'static>(
    table: &impl ReadableTable<&'static str, V>,
) -> Result<Vec<String>, TxnError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        out.push(row?.0.value().to_string());
    }
    Ok(out)
}

fn forget_refresh_tokens(txn: &WriteTransaction, subjects: &[String]) -> Result<(), TxnError> {
    if subjects.is_empty() {
        return Ok(());
    }
    let mut t = txn.open_table(REFRESH)?;
    let doomed: Vec<String> = all::<RefreshRecord>(&t)?
        .into_iter()
        .filter(|(_, r)| subjects.contains(&r.subject))
        .map(|(k, _)| k)
        .collect();
    for k in doomed {
        t.remove(k.as_str())?;
    }
    Ok(())
}
