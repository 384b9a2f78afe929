//! docker's client configuration (`~/.docker/config.json`): registry credentials in `auths`
//! (base64 `user:pass` or an identity token), or in credential helpers named by `credsStore`
//! and `credHelpers` (`docker-credential-<name> get|store|erase`, JSON on stdin/stdout).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::reference::convert_to_hostname;

/// docker's `registry.AuthConfig` as sent in `X-Registry-Auth` (empty fields left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl AuthConfig {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identitytoken.is_empty()
    }
}

/// The `X-Registry-Auth` header: base64url (with padding) of the JSON auth config.
pub fn encode_registry_auth(auth: &AuthConfig) -> String {
    URL_SAFE.encode(serde_json::to_vec(auth).unwrap_or_default())
}

/// The `auth` field of config.json: base64 of `user:password`.
pub fn encode_auth_field(username: &str, password: &str) -> String {
    STANDARD.encode(format!("{username}:{password}"))
}

pub fn decode_auth_field(auth: &str) -> Result<(String, String)> {
    let bytes = STANDARD
        .decode(auth.trim())
        .context("invalid auth configuration file")?;
    let text = String::from_utf8(bytes).context("invalid auth configuration file")?;
    match text.split_once(':') {
        Some((u, p)) => Ok((u.to_string(), p.trim_end_matches('\0').to_string())),
        None => bail!("invalid auth configuration file"),
    }
}

/// The directory: `--config`, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(flag: Option<&str>) -> PathBuf {
    if let Some(dir) = flag.filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

pub struct ConfigFile {
    pub path: PathBuf,
    data: Map<String, Json>,
    /// Where credential helpers are looked up; `None` searches `PATH`.
    helper_dir: Option<PathBuf>,
}

impl ConfigFile {
    pub fn load(dir: &Path) -> Result<ConfigFile> {
        let path = dir.join("config.json");
        let data = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Json>(&bytes) {
                Ok(Json::Object(m)) => m,
                Ok(_) | Err(_) => bail!("loading config file: {}: invalid JSON", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("loading config file {}", path.display()));
            }
        };
        Ok(ConfigFile {
            path,
            data,
            helper_dir: None,
        })
    }

    /// Writes the file atomically with mode 0600, like docker.
    pub fn save(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut buf = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
        Json::Object(self.data.clone()).serialize(&mut ser)?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }

    /// A top-level string setting (`imagesFormat`, `credsStore`…), when set.
    pub fn string(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn auths(&self) -> Option<&Map<String, Json>> {
        self.data.get("auths").and_then(Json::as_object)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Json> {
        let entry = self
            .data
            .entry("auths")
            .or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        entry.as_object_mut().expect("auths is an object")
    }

    /// The credential helper for a registry: `credHelpers[server]`, else `credsStore`.
    pub fn helper_for(&self, server: &str) -> Option<String> {
        if !server.is_empty()
            && let Some(h) = self
                .data
                .get("credHelpers")
                .and_then(|m| m.get(server))
                .and_then(Json::as_str)
        {
            return Some(h.to_string());
        }
        self.string("credsStore")
    }

    pub fn uses_helper(&self, server: &str) -> bool {
        self.helper_for(server).is_some()
    }

    /// Credentials for `server` (a hostname, or [`crate::reference::INDEX_SERVER`]); empty when
    /// none are stored.
    pub fn get_auth(&self, server: &str) -> Result<AuthConfig> {
        if let Some(helper) = self.helper_for(server) {
            let mut auth = self.helper_get(&helper, server)?;
            if let Some(email) = self
                .file_entry(server)
                .and_then(|e| e.get("email").and_then(Json::as_str))
            {
                auth.email = email.to_string();
            }
            return Ok(auth);
        }
        self.file_auth(server)
    }

    fn file_entry(&self, server: &str) -> Option<&Map<String, Json>> {
        let auths = self.auths()?;
        if let Some(e) = auths.get(server).and_then(Json::as_object) {
            return Some(e);
        }
        // Legacy keys (`https://host/v1/`) match by hostname.
        auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == server)
            .and_then(|(_, v)| v.as_object())
    }

    fn file_auth(&self, server: &str) -> Result<AuthConfig> {
        let Some(entry) = self.file_entry(server) else {
            return Ok(AuthConfig {
                serveraddress: server.to_string(),
                ..Default::default()
            });
        };
        let mut auth: AuthConfig =
            serde_json::from_value(Json::Object(entry.clone())).unwrap_or_default();
        if !auth.auth.is_empty() {
            let (u, p) = decode_auth_field(&auth.auth)?;
            auth.username = u;
            auth.password = p;
            auth.auth.clear();
        }
        auth.serveraddress = server.to_string();
        Ok(auth)
    }

    /// Stores credentials, in the helper when one is configured (config.json then keeps an
    /// empty entry for the server, as docker does).
    pub fn store_auth(&mut self, auth: &AuthConfig) -> Result<()> {
        let server = auth.serveraddress.clone();
        let mut entry = Map::new();
        if let Some(helper) = self.helper_for(&server) {
            let (user, secret) = if auth.identitytoken.is_empty() {
                (auth.username.clone(), auth.password.clone())
            } else {
                ("<token>".to_string(), auth.identitytoken.clone())
            };
            let body = serde_json::json!({"ServerURL": server, "Username": user, "Secret": secret});
            self.run_helper(&helper, "store", &body.to_string())?;
        } else {
            if !auth.username.is_empty() || !auth.password.is_empty() {
                entry.insert(
                    "auth".into(),
                    Json::String(encode_auth_field(&auth.username, &auth.password)),
                );
            }
            if !auth.identitytoken.is_empty() {
                entry.insert(
                    "identitytoken".into(),
                    Json::String(auth.identitytoken.clone()),
                );
            }
        }
        if !auth.email.is_empty() {
            entry.insert("email".into(), Json::String(auth.email.clone()));
        }
        self.auths_mut().insert(server, Json::Object(entry));
        self.save()
    }

    /// Removes credentials for `server` (from the helper too); Err when nothing could be erased.
    pub fn erase_auth(&mut self, server: &str) -> Result<()> {
        let helper_result = match self.helper_for(server) {
            Some(helper) => self.run_helper(&helper, "erase", server).map(|_| ()),
            None => Ok(()),
        };
        if self.auths().is_some_and(|a| a.contains_key(server)) {
            self.auths_mut().remove(server);
            self.save()?;
        }
        helper_result
    }

    fn helper_get(&self, helper: &str, server: &str) -> Result<AuthConfig> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Creds {
            #[serde(default)]
            username: String,
            #[serde(default)]
            secret: String,
        }
        let out = match self.run_helper(helper, "get", server) {
            Ok(out) => out,
            Err(e) if e.to_string().contains("credentials not found") => {
                return Ok(AuthConfig {
                    serveraddress: server.to_string(),
                    ..Default::default()
                });
            }
            Err(e) => return Err(e),
        };
        let creds: Creds = serde_json::from_str(&out).with_context(|| {
            format!(
                "error getting credentials - err: invalid output from docker-credential-{helper}"
            )
        })?;
        let mut auth = AuthConfig {
            serveraddress: server.to_string(),
            ..Default::default()
        };
        if creds.username == "<token>" {
            auth.identitytoken = creds.secret;
        } else {
            auth.username = creds.username;
            auth.password = creds.secret;
        }
        Ok(auth)
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin; Err carries its output.
    fn run_helper(&self, helper: &str, action: &str, input: &str) -> Result<String> {
        let program = format!("docker-credential-{helper}");
        let exe = match &self.helper_dir {
            Some(dir) => dir.join(&program),
            None => PathBuf::from(&program),
        };
        let mut child = Command::new(&exe)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow!("error getting credentials - err: exec: \"{program}\": {e}, out: ``")
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may answer without reading its input.
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            let text = if stdout.is_empty() {
                String::from_utf8_lossy(&out.stderr).trim().to_string()
            } else {
                stdout
            };
            bail!("{text}");
        }
        Ok(stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_header_is_base64url_json() {
        let auth = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "https://index.docker.io/v1/".into(),
            ..Default::default()
        };
        let encoded = encode_registry_auth(&auth);
        assert!(!encoded.contains('+') && !encoded.contains('/'));
        let json = String::from_utf8(URL_SAFE.decode(&encoded).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"username":"u","password":"p?>","serveraddress":"https://index.docker.io/v1/"}"#
        );
        assert_eq!(encode_registry_auth(&AuthConfig::default()), "e30=");
    }

    #[test]
    fn auth_field_round_trip() {
        let field = encode_auth_field("alice", "s3:cret");
        assert_eq!(field, "YWxpY2U6czM6Y3JldA==");
        assert_eq!(
            decode_auth_field(&field).unwrap(),
            ("alice".into(), "s3:cret".into())
        );
        assert!(decode_auth_field("bm9jb2xvbg==").is_err());
    }

    #[test]
    fn store_get_erase_in_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"psFormat":"x","auths":{"https://old:5000/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let mut cfg = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(cfg.get_auth("old:5000").unwrap().username, "a");
        let auth = AuthConfig {
            username: "alice".into(),
            password: "pw".into(),
            serveraddress: "reg:5000".into(),
            ..Default::default()
        };
        cfg.store_auth(&auth).unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        let got = cfg.get_auth("reg:5000").unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("alice", "pw")
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(text.contains("\"psFormat\": \"x\""), "{text}");
        assert!(text.contains("\"auth\": \"YWxpY2U6cHc=\""), "{text}");
        let mut cfg = cfg;
        cfg.erase_auth("reg:5000").unwrap();
        assert!(
            ConfigFile::load(dir.path())
                .unwrap()
                .get_auth("reg:5000")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn identity_tokens_are_stored_instead_of_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ConfigFile::load(dir.path()).unwrap();
        let auth = AuthConfig {
            username: "alice".into(),
            identitytoken: "tok".into(),
            serveraddress: "reg".into(),
            ..Default::default()
        };
        cfg.store_auth(&auth).unwrap();
        let got = ConfigFile::load(dir.path())
            .unwrap()
            .get_auth("reg")
            .unwrap();
        assert_eq!(got.identitytoken, "tok");
    }

    #[test]
    fn helpers_are_chosen_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}"#,
        )
        .unwrap();
        let cfg = ConfigFile::load(dir.path()).unwrap();
        assert_eq!(cfg.helper_for("gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(cfg.helper_for("other").as_deref(), Some("desktop"));
    }

    #[test]
    fn helper_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n store) cat > {s} ;;\n get) if [ -f {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n erase) rm -f {s} ;;\nesac\n",
            s = store.display()
        );
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(&helper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credsStore":"fake"}"#).unwrap();
        let mut cfg = ConfigFile::load(dir.path()).unwrap();
        cfg.helper_dir = Some(dir.path().to_path_buf());
        assert!(cfg.get_auth("reg").unwrap().is_empty());
        let auth = AuthConfig {
            username: "bob".into(),
            identitytoken: "t0k".into(),
            serveraddress: "reg".into(),
            ..Default::default()
        };
        cfg.store_auth(&auth).unwrap();
        let stored: Json = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"ServerURL": "reg", "Username": "<token>", "Secret": "t0k"})
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(text.contains("\"reg\": {}"), "{text}");
        assert_eq!(cfg.get_auth("reg").unwrap().identitytoken, "t0k");
        cfg.erase_auth("reg").unwrap();
        assert!(!store.exists());
        assert!(cfg.get_auth("reg").unwrap().is_empty());
    }
}
