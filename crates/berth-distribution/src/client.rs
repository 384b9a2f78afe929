//! The registry client: endpoints, authenticated requests with a token cache, login, and the
//! mapping of registry answers to errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_image::{Digest, Reference};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use url::Url;

use crate::auth::{self, Challenge, Credentials};
use crate::endpoint::{InsecureEntry, api_host, is_loopback, normalize_registry};
use crate::error::{DistributionError, RegistryMessage};
use crate::transport::{Call, Payload, Transport, read_limited};

/// Error bodies are read up to this size; more is dropped.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// How long the HTTPS probe of an insecure registry may take before plain HTTP is tried.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Registries reached over plain HTTP or HTTPS without certificate checks: `host[:port]`
    /// exactly as in references, or CIDRs (`10.0.0.0/8`) matched against IP literals. HTTPS is
    /// tried first, then HTTP, as docker does. Loopback registries use HTTP without being listed.
    pub insecure_registries: Vec<String>,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A client of Docker registry v2 / OCI distribution registries. Cheap to clone: clones share
/// the HTTP connection pools, the token cache and the endpoint cache.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    insecure: Vec<InsecureEntry>,
    auth_cache: Mutex<HashMap<AuthKey, CachedAuth>>,
    challenges: Mutex<HashMap<String, Challenge>>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

/// Where a registry's API is: `https://registry-1.docker.io/` and whether TLS is unchecked.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub base: Url,
    pub insecure_tls: bool,
}

#[derive(Hash, PartialEq, Eq)]
struct AuthKey {
    registry: String,
    scope: String,
    creds: Option<Digest>,
}

struct CachedAuth {
    header: HeaderValue,
    expires: Option<Instant>,
}

/// A request for [`RegistryClient::send_request`].
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Payload>,
}

/// What a failed request was about, to word its error.
pub(crate) enum Subject<'a> {
    Manifest(&'a Reference),
    Blob(&'a Reference, &'a Digest),
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("insecure", &self.inner.insecure)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RegistryClient {
    pub fn new(cfg: ClientConfig) -> Result<RegistryClient, DistributionError> {
        let insecure = cfg
            .insecure_registries
            .iter()
            .map(|s| InsecureEntry::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let user_agent = if cfg.user_agent.is_empty() {
            ClientConfig::default().user_agent
        } else {
            cfg.user_agent
        };
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                transport: Transport::new(&user_agent)?,
                insecure,
                auth_cache: Mutex::default(),
                challenges: Mutex::default(),
                endpoints: Mutex::default(),
            }),
        })
    }

    fn is_insecure(&self, registry: &str) -> bool {
        let host = api_host(registry);
        self.inner
            .insecure
            .iter()
            .any(|e| e.matches(registry) || e.matches(host))
    }

    /// The API endpoint of a registry: HTTPS; for insecure registries HTTPS without
    /// certificate checks if it answers, else HTTP (probed once, then remembered); HTTP for
    /// loopback registries.
    pub(crate) async fn endpoint(&self, registry: &str) -> Result<Endpoint, DistributionError> {
        let host = api_host(registry);
        let at = |scheme: &str, insecure_tls: bool| -> Result<Endpoint, DistributionError> {
            let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                DistributionError::InvalidConfig(format!("invalid registry host {host:?}: {e}"))
            })?;
            Ok(Endpoint { base, insecure_tls })
        };
        if !self.is_insecure(registry) {
            return at(if is_loopback(host) { "http" } else { "https" }, false);
        }
        if let Some(e) = lock(&self.inner.endpoints).get(registry) {
            return Ok(e.clone());
        }
        let https = at("https", true)?;
        let https_err = match self.probe(registry, &https).await {
            Ok(()) => {
                lock(&self.inner.endpoints).insert(registry.to_string(), https.clone());
                return Ok(https);
            }
            Err(e) => e,
        };
        let http = at("http", false)?;
        match self.probe(registry, &http).await {
            Ok(()) => {
                tracing::info!(registry, error = %https_err, "insecure registry does not speak https, using http");
                lock(&self.inner.endpoints).insert(registry.to_string(), http.clone());
                Ok(http)
            }
            Err(http_err) => Err(DistributionError::Connection {
                registry: registry.to_string(),
                cause: format!(
                    "{}; over plain http: {}",
                    cause_of(https_err),
                    cause_of(http_err)
                ),
            }),
        }
    }

    /// Any HTTP answer to `GET /v2/` shows the scheme works.
    async fn probe(&self, registry: &str, ep: &Endpoint) -> Result<(), DistributionError> {
        let call = Call {
            registry,
            method: Method::GET,
            url: v2_url(ep, "")?,
            headers: HeaderMap::new(),
            body: None,
            auth: None,
            insecure_tls: ep.insecure_tls,
        };
        match tokio::time::timeout(PROBE_TIMEOUT, self.inner.transport.execute(call)).await {
            Ok(r) => r.map(drop),
            Err(_) => Err(DistributionError::Connection {
                registry: registry.to_string(),
                cause: format!("GET {}v2/: timed out", ep.base),
            }),
        }
    }

    /// Sends a GET with the credentials the registry asks for: a cached token if there is
    /// one; else anonymously, and on 401 answers the challenge (token or Basic) and retries once.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        registry: &str,
        scope: &str,
        creds: Option<&Credentials>,
        url: Url,
        headers: HeaderMap,
    ) -> Result<reqwest::Response, DistributionError> {
        let req = Req {
            method: Method::GET,
            url,
            headers,
            body: None,
        };
        self.send_request(ep, registry, scope, creds, req).await
    }

    /// [`RegistryClient::send`] for any method, with a body that is sent again on the retry.
    /// `scope` may hold several scopes separated by spaces.
    pub(crate) async fn send_request(
        &self,
        ep: &Endpoint,
        registry: &str,
        scope: &str,
        creds: Option<&Credentials>,
        req: Req,
    ) -> Result<reqwest::Response, DistributionError> {
        let Req {
            method,
            url,
            headers,
            body,
        } = req;
        let key = AuthKey {
            registry: registry.to_string(),
            scope: scope.to_string(),
            creds: creds.map(Credentials::fingerprint),
        };
        let registry_token = creds
            .and_then(|c| c.registry_token.as_deref())
            .filter(|t| !t.is_empty());
        let mut auth = match registry_token {
            Some(t) => Some(auth::bearer_header(t)),
            None => self.cached_auth(&key),
        };
        // A challenge seen before on this registry is answered up front, saving a round trip.
        let mut answered: Option<Challenge> = None;
        if auth.is_none() && registry_token.is_none() {
            let known = lock(&self.inner.challenges).get(registry).cloned();
            if let Some(challenge) = known {
                auth = self
                    .authenticate(ep, registry, &challenge, scope, creds, &key)
                    .await?;
                answered = auth.is_some().then_some(challenge);
            }
        }
        let mut retried = false;
        loop {
            let call = Call {
                registry,
                method: method.clone(),
                url: url.clone(),
                headers: headers.clone(),
                body: body.clone(),
                auth: auth.as_ref(),
                insecure_tls: ep.insecure_tls,
            };
            let resp = self.inner.transport.execute(call).await?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried || registry_token.is_some() {
                return Ok(resp);
            }
            let all = auth::challenges(resp.headers());
            let Some(challenge) = auth::preferred(&all).cloned() else {
                return Ok(resp);
            };
            if answered.as_ref() == Some(&challenge) {
                // Refused with fresh credentials for this very challenge: asking again won't help.
                return Ok(resp);
            }
            lock(&self.inner.challenges).insert(registry.to_string(), challenge.clone());
            lock(&self.inner.auth_cache).remove(&key);
            match self
                .authenticate(ep, registry, &challenge, scope, creds, &key)
                .await?
            {
                Some(fresh) => auth = Some(fresh),
                None => return Ok(resp),
            }
            retried = true;
        }
    }

    fn cached_auth(&self, key: &AuthKey) -> Option<HeaderValue> {
        let mut cache = lock(&self.inner.auth_cache);
        match cache.get(key) {
            Some(c) if c.expires.is_none_or(|t| t > Instant::now()) => Some(c.header.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    /// The header that answers a challenge, cached for the key; `None` when there is nothing
    /// to answer with (Basic without credentials, unknown scheme).
    async fn authenticate(
        &self,
        ep: &Endpoint,
        registry: &str,
        challenge: &Challenge,
        scope: &str,
        creds: Option<&Credentials>,
        key: &AuthKey,
    ) -> Result<Option<HeaderValue>, DistributionError> {
        let (header, expires) = match challenge.scheme.as_str() {
            "bearer" => {
                let transport = &self.inner.transport;
                let scope = Some(scope).filter(|s| !s.is_empty());
                let token = auth::fetch_token(
                    transport,
                    registry,
                    ep.insecure_tls,
                    challenge,
                    scope,
                    creds,
                    false,
                )
                .await?;
                (
                    auth::bearer_header(&token.token),
                    Some(Instant::now() + token.lifetime),
                )
            }
            "basic" => match creds.filter(|c| c.has_basic()) {
                Some(c) => (c.basic_header(), None),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let cached = CachedAuth {
            header: header.clone(),
            expires,
        };
        lock(&self.inner.auth_cache).insert(
            AuthKey {
                registry: key.registry.clone(),
                scope: key.scope.clone(),
                creds: key.creds,
            },
            cached,
        );
        Ok(Some(header))
    }

    /// Checks credentials as `docker login` does: `GET /v2/`, and when the registry challenges,
    /// a token request (asking for a refresh token) or Basic auth, then `GET /v2/` with the
    /// result. `registry` may be given as docker's CLI sends it (`https://index.docker.io/v1/`).
    /// Returns the identity (refresh) token when the token server issued one.
    pub async fn login(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, DistributionError> {
        let registry = normalize_registry(registry);
        let ep = self.endpoint(&registry).await?;
        let url = v2_url(&ep, "")?;
        let get = |auth: Option<HeaderValue>| {
            let url = url.clone();
            let registry = registry.clone();
            let insecure_tls = ep.insecure_tls;
            async move {
                let call = Call {
                    registry: &registry,
                    method: Method::GET,
                    url,
                    headers: HeaderMap::new(),
                    body: None,
                    auth: auth.as_ref(),
                    insecure_tls,
                };
                self.inner.transport.execute(call).await
            }
        };
        let first_auth = creds.registry_token.as_deref().map(auth::bearer_header);
        let resp = get(first_auth).await?;
        if resp.status().is_success() {
            return Ok(None);
        }
        if resp.status() != StatusCode::UNAUTHORIZED || creds.registry_token.is_some() {
            return Err(login_error(&registry, resp).await);
        }
        let all = auth::challenges(resp.headers());
        let (auth, refresh) = match auth::preferred(&all) {
            Some(c) if c.scheme == "bearer" => {
                let transport = &self.inner.transport;
                let token = auth::fetch_token(
                    transport,
                    &registry,
                    ep.insecure_tls,
                    c,
                    None,
                    Some(creds),
                    true,
                )
                .await?;
                (auth::bearer_header(&token.token), token.refresh_token)
            }
            Some(_) if creds.has_basic() => (creds.basic_header(), None),
            _ => return Err(login_error(&registry, resp).await),
        };
        let resp = get(Some(auth)).await?;
        if resp.status().is_success() {
            Ok(refresh)
        } else {
            Err(login_error(&registry, resp).await)
        }
    }
}

async fn login_error(registry: &str, resp: reqwest::Response) -> DistributionError {
    let (status, url) = (resp.status(), resp.url().to_string());
    let body = error_body(resp, registry).await;
    if status == StatusCode::UNAUTHORIZED {
        return auth::unauthorized(registry, status, &body, true);
    }
    DistributionError::Status {
        registry: registry.to_string(),
        method: "GET".into(),
        url,
        status: status.as_u16(),
        cause: RegistryMessage::parse(status, &body).text,
    }
}

/// `{base}v2/{path}`.
pub(crate) fn v2_url(ep: &Endpoint, path: &str) -> Result<Url, DistributionError> {
    let s = format!("{}v2/{path}", ep.base);
    Url::parse(&s)
        .map_err(|e| DistributionError::InvalidConfig(format!("invalid registry url {s:?}: {e}")))
}

/// The body of an error answer, or nothing if it cannot be read or is too large.
pub(crate) async fn error_body(resp: reqwest::Response, registry: &str) -> bytes::Bytes {
    read_limited(resp, registry, "error response", MAX_ERROR_BODY)
        .await
        .unwrap_or_default()
}

fn cause_of(e: DistributionError) -> String {
    match e {
        DistributionError::Connection { cause, .. } => cause,
        other => other.to_string(),
    }
}

/// `resp` when it succeeded; otherwise the error for `subject` in docker's words (its body
/// read for the registry's message).
pub(crate) async fn ensure_success(
    resp: reqwest::Response,
    registry: &str,
    subject: &Subject<'_>,
    anonymous: bool,
) -> Result<reqwest::Response, DistributionError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let url = resp.url().clone();
    let body = error_body(resp, registry).await;
    Err(status_error(
        registry, &url, status, &body, subject, anonymous,
    ))
}

/// The error for a failed request about `subject`, in docker's words.
pub(crate) fn status_error(
    registry: &str,
    url: &Url,
    status: StatusCode,
    body: &[u8],
    subject: &Subject<'_>,
    anonymous: bool,
) -> DistributionError {
    let m = RegistryMessage::parse(status, body);
    let r = match subject {
        Subject::Manifest(r) | Subject::Blob(r, _) => *r,
    };
    let denied = || DistributionError::PullAccessDenied {
        name: r.familiar_name(),
        cause: m.text.clone(),
    };
    match status.as_u16() {
        401 | 403 if anonymous || m.is("DENIED") => denied(),
        401 => auth::unauthorized(registry, status, body, true),
        403 => DistributionError::Forbidden {
            registry: registry.to_string(),
            name: r.familiar_name(),
            cause: m.text,
        },
        404 if m.is("NAME_UNKNOWN") => DistributionError::RepositoryUnknown {
            name: r.familiar_name(),
            cause: m.text,
        },
        404 if m.is("DENIED") || m.is("UNAUTHORIZED") => denied(),
        404 => match subject {
            Subject::Manifest(r) => DistributionError::ManifestUnknown {
                reference: r.familiar(),
                cause: m.text,
            },
            Subject::Blob(r, d) => DistributionError::BlobUnknown {
                name: r.familiar_name(),
                digest: **d,
                cause: m.text,
            },
        },
        _ => DistributionError::Status {
            registry: registry.to_string(),
            method: "GET".into(),
            url: url.to_string(),
            status: status.as_u16(),
            cause: m.text,
        },
    }
}

/// A token server that refuses an anonymous pull means the same as a registry that does.
pub(crate) fn anonymous_denied(
    e: DistributionError,
    r: &Reference,
    anonymous: bool,
) -> DistributionError {
    match e {
        DistributionError::Unauthorized { message, .. } if anonymous => {
            DistributionError::PullAccessDenied {
                name: r.familiar_name(),
                cause: format!("unauthorized: {message}"),
            }
        }
        other => other,
    }
}
