//! Tag listing (`GET /v2/NAME/tags/list`), for `docker pull --all-tags`.

use http::HeaderMap;
use serde::Deserialize;

use berth_image::Reference;

use crate::auth::Credentials;
use crate::client::{RegistryClient, Subject, anonymous_denied, ensure_success, v2_url};
use crate::error::DistributionError;
use crate::pull::scope_of;
use crate::transport::{header_str, read_limited};

/// Page size asked for; registries may return fewer and a `Link` to the next page.
const PAGE: usize = 1000;
/// A bound on pages, so a registry that links in circles cannot keep us forever.
const MAX_PAGES: usize = 1000;
const MAX_PAGE_BYTES: u64 = 4 << 20;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// Every tag of `r`'s repository, in the registry's order, following `Link` pagination.
    pub async fn list_tags(
        &self,
        r: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<Vec<String>, DistributionError> {
        let registry = r.registry();
        let ep = self.endpoint(registry).await?;
        let mut path = format!("{}/tags/list?n={PAGE}", r.repository());
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let url = v2_url(&ep, &path)?;
            let resp = self
                .send(&ep, registry, &scope_of(r), creds, url, HeaderMap::new())
                .await
                .map_err(|e| anonymous_denied(e, r, creds.is_none()))?;
            let resp =
                ensure_success(resp, registry, &Subject::Manifest(r), creds.is_none()).await?;
            let next = header_str(resp.headers(), "link").and_then(next_link);
            let what = format!("tag list of {}", r.familiar_name());
            let body = read_limited(resp, registry, &what, MAX_PAGE_BYTES).await?;
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| DistributionError::Protocol {
                    what: what.clone(),
                    reason: format!("invalid JSON: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => path = n,
                None => return Ok(tags),
            }
        }
        Err(DistributionError::Protocol {
            what: format!("tag list of {}", r.familiar_name()),
            reason: format!("more than {MAX_PAGES} pages"),
        })
    }
}

/// The path after `/v2/` of a `Link: </v2/name/tags/list?n=2&last=b>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let path = match target.find("/v2/") {
            Some(i) => &target[i + 4..],
            None => return None,
        };
        Some(path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn parses_link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/b/tags/list?n=2&last=x>; rel="next""#).as_deref(),
            Some("a/b/tags/list?n=2&last=x")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?last=y&n=5>; rel="next""#).as_deref(),
            Some("a/tags/list?last=y&n=5")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list>; rel="prev""#), None);
    }
}
