//! Registry authentication: credentials, `WWW-Authenticate` challenges and the token protocol
//! (docker's token spec: `GET realm?service=…&scope=…` with Basic auth, or the OAuth2
//! `refresh_token` grant when an identity token is known).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use berth_image::Digest;
use http::{HeaderMap, HeaderValue, Method, header};
use serde::Deserialize;

use crate::error::{DistributionError, RegistryMessage, status_text};
use crate::transport::{Call, Transport};

/// The `client_id` sent to token servers.
const CLIENT_ID: &str = "berth";
/// Tokens without `expires_in` (or with less) live this long, as in docker.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Token responses are small; refuse absurd ones.
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// Credentials for one registry, as `docker login` stores them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// A refresh token from an earlier login, used with the OAuth2 `refresh_token` grant.
    pub identity_token: Option<String>,
    /// A bearer token for the registry itself, sent as is.
    pub registry_token: Option<String>,
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
            ..Default::default()
        }
    }

    pub(crate) fn has_basic(&self) -> bool {
        !self.username.is_empty()
    }

    pub(crate) fn basic_header(&self) -> HeaderValue {
        let raw = format!("{}:{}", self.username, self.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        sensitive(format!("Basic {encoded}"))
    }

    /// Identifies these credentials in the token cache without keeping them in the key.
    pub(crate) fn fingerprint(&self) -> Digest {
        let id = self.identity_token.as_deref().unwrap_or("");
        let rt = self.registry_token.as_deref().unwrap_or("");
        Digest::of(format!("{}\0{}\0{id}\0{rt}", self.username, self.password).as_bytes())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("identity_token", &redact(&self.identity_token))
            .field("registry_token", &redact(&self.registry_token))
            .finish()
    }
}

pub(crate) fn bearer_header(token: &str) -> HeaderValue {
    sensitive(format!("Bearer {token}"))
}

fn sensitive(s: String) -> HeaderValue {
    // Tokens are base64/JWT text; anything else is dropped rather than sent garbled.
    let mut v = HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// One challenge of a `WWW-Authenticate` header: the scheme (lowercase) and its parameters
/// (lowercase names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses every challenge of every `WWW-Authenticate` header. Quoted values may contain commas
/// and backslash escapes; several challenges may share one header.
pub(crate) fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// The challenge to answer: Bearer before Basic, others ignored.
pub(crate) fn preferred(all: &[Challenge]) -> Option<&Challenge> {
    all.iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| all.iter().find(|c| c.scheme == "basic"))
}

pub(crate) fn parse_challenges(s: &str) -> Vec<Challenge> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_token = |c: u8| !c.is_ascii_whitespace() && c != b',' && c != b'=' && c != b'"';
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_token(b[i]) {
            i += 1;
        }
        if i == start {
            i += 1; // a stray '=' or '"': skip it
            continue;
        }
        let mut challenge = Challenge {
            scheme: s[start..i].to_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                i += 1;
            }
            let name_start = i;
            while i < b.len() && is_token(b[i]) {
                i += 1;
            }
            let name_end = i;
            skip_ws(&mut i);
            if name_end == name_start || i >= b.len() || b[i] != b'=' {
                // Not `name=`: the start of the next challenge (or the end).
                i = name_start;
                break;
            }
            i += 1;
            skip_ws(&mut i);
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                let mut seg = i;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        v.push_str(&s[seg..i]);
                        i += 1;
                        seg = i;
                    }
                    i += 1;
                }
                v.push_str(&s[seg..i.min(b.len())]);
                i = (i + 1).min(b.len());
                v
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                s[vs..i].to_string()
            };
            challenge
                .params
                .insert(s[name_start..name_end].to_lowercase(), value);
        }
        out.push(challenge);
    }
    out
}

/// What a token server granted.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub token: String,
    pub lifetime: Duration,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Asks the token server of a Bearer challenge for a token for `scope` (none for login).
/// `offline` asks for a refresh token too, as `docker login` does.
pub(crate) async fn fetch_token(
    transport: &Transport,
    registry: &str,
    insecure_tls: bool,
    challenge: &Challenge,
    scope: Option<&str>,
    creds: Option<&Credentials>,
    offline: bool,
) -> Result<Token, DistributionError> {
    let protocol = |reason: String| DistributionError::Protocol {
        what: format!("the token server of {registry}"),
        reason,
    };
    let realm = challenge
        .params
        .get("realm")
        .ok_or_else(|| protocol("bearer challenge without realm".into()))?;
    let realm =
        url::Url::parse(realm).map_err(|e| protocol(format!("invalid realm {realm:?}: {e}")))?;
    if !matches!(realm.scheme(), "http" | "https") {
        return Err(protocol(format!("realm {realm} is not an http(s) url")));
    }
    let service = challenge.params.get("service").map(String::as_str);
    let scope = scope.or_else(|| challenge.params.get("scope").map(String::as_str));

    if let Some(refresh) = creds
        .and_then(|c| c.identity_token.as_deref())
        .filter(|t| !t.is_empty())
    {
        // Built in its own scope: the serializer is not Send and must not live across an await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh);
            form.append_pair("client_id", CLIENT_ID);
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            if let Some(s) = scope {
                form.append_pair("scope", s);
            }
            if offline {
                form.append_pair("access_type", "offline");
            }
            form.finish().into_bytes()
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let call = Call {
            registry,
            method: Method::POST,
            url: realm.clone(),
            headers,
            body: Some(body.into()),
            auth: None,
            insecure_tls,
        };
        let resp = transport.execute(call).await?;
        // Registries without the OAuth2 endpoint answer 404 or 405: fall back to GET.
        let fallback = matches!(resp.status().as_u16(), 404 | 405)
            && creds.is_some_and(Credentials::has_basic);
        if !fallback {
            return token_from_response(resp, registry, creds).await;
        }
    }

    let mut url = realm;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        // Several scopes (a push that mounts from another repository) are separate
        // parameters here, as docker sends them; the OAuth2 form above joins them with spaces.
        for s in scope.into_iter().flat_map(str::split_whitespace) {
            q.append_pair("scope", s);
        }
        if offline {
            q.append_pair("offline_token", "true")
                .append_pair("client_id", CLIENT_ID);
        }
    }
    let auth = creds
        .filter(|c| c.has_basic())
        .map(Credentials::basic_header);
    let call = Call {
        registry,
        method: Method::GET,
        url,
        headers: HeaderMap::new(),
        body: None,
        auth: auth.as_ref(),
        insecure_tls,
    };
    let resp = transport.execute(call).await?;
    token_from_response(resp, registry, creds).await
}

async fn token_from_response(
    resp: reqwest::Response,
    registry: &str,
    creds: Option<&Credentials>,
) -> Result<Token, DistributionError> {
    let status = resp.status();
    let url = resp.url().clone();
    let body =
        crate::transport::read_limited(resp, registry, "token response", MAX_TOKEN_RESPONSE as u64)
            .await?;
    if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
        return Err(unauthorized(registry, status, &body, creds.is_some()));
    }
    if !status.is_success() {
        return Err(DistributionError::Status {
            registry: registry.to_string(),
            method: "GET".into(),
            url: url.to_string(),
            status: status.as_u16(),
            cause: format!(
                "token server: {}",
                RegistryMessage::parse(status, &body).text
            ),
        });
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| DistributionError::Protocol {
            what: format!("the token server of {registry}"),
            reason: format!("invalid token response: {e}"),
        })?;
    let token = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| DistributionError::Protocol {
            what: format!("the token server of {registry}"),
            reason: "the response holds neither token nor access_token".into(),
        })?;
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(0)).max(MIN_TOKEN_LIFETIME);
    Ok(Token {
        token,
        lifetime,
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
    })
}

/// The error for a refused authentication, in docker's words when the server gives none.
pub(crate) fn unauthorized(
    registry: &str,
    status: http::StatusCode,
    body: &[u8],
    had_credentials: bool,
) -> DistributionError {
    let m = RegistryMessage::parse(status, body);
    let message = if m.text == status_text(status) {
        if had_credentials {
            "incorrect username or password"
        } else {
            "authentication required"
        }
        .to_string()
    } else {
        m.text
            .strip_prefix("unauthorized: ")
            .unwrap_or(&m.text)
            .to_string()
    };
    DistributionError::Unauthorized {
        registry: registry.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn parses_bearer_with_commas_in_quotes() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            vec![
                ("realm", "https://auth.example/token"),
                ("scope", "repository:a/b:pull,push"),
                ("service", "registry.example"),
            ]
        );
    }

    #[test]
    fn parses_several_challenges_spaces_escapes_and_tokens() {
        let c = parse_challenges(
            r#"Basic realm="Registry Realm", BEARER Realm = "http://x/t?a=1" , error="insufficient_scope",  service=reg"#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(params(&c[0]), vec![("realm", "Registry Realm")]);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(
            params(&c[1]),
            vec![
                ("error", "insufficient_scope"),
                ("realm", "http://x/t?a=1"),
                ("service", "reg")
            ]
        );
        let c = parse_challenges(r#"Bearer realm="a\"b\\c""#);
        assert_eq!(params(&c[0]), vec![("realm", r#"a"b\c"#)]);
        let c = parse_challenges("Basic");
        assert_eq!(
            c,
            vec![Challenge {
                scheme: "basic".into(),
                params: BTreeMap::new()
            }]
        );
        let c = parse_challenges(r#"Bearer realm="unterminated"#);
        assert_eq!(params(&c[0]), vec![("realm", "unterminated")]);
        assert!(parse_challenges("  ,  ").is_empty());
        let all = parse_challenges(r#"Basic realm="r", Bearer realm="s""#);
        assert_eq!(preferred(&all).unwrap().scheme, "bearer");
    }

    #[test]
    fn credentials_never_print_secrets() {
        let c = Credentials {
            identity_token: Some("tok".into()),
            ..Credentials::basic("me", "s3cret")
        };
        let s = format!("{c:?}");
        assert!(
            s.contains("me") && !s.contains("s3cret") && !s.contains("tok\""),
            "{s}"
        );
        assert_eq!(c.basic_header().to_str().unwrap(), "Basic bWU6czNjcmV0");
        assert_ne!(
            c.fingerprint(),
            Credentials::basic("me", "other").fingerprint()
        );
    }

    #[test]
    fn unauthorized_messages() {
        let s = http::StatusCode::UNAUTHORIZED;
        let e = unauthorized("r", s, b"", true);
        assert_eq!(
            e.to_string(),
            "unauthorized: incorrect username or password"
        );
        let e = unauthorized(
            "r",
            s,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#,
            true,
        );
        assert_eq!(e.to_string(), "unauthorized: token expired");
        let e = unauthorized(
            "r",
            s,
            br#"{"details":"incorrect username or password"}"#,
            true,
        );
        assert_eq!(
            e.to_string(),
            "unauthorized: incorrect username or password"
        );
    }
}
