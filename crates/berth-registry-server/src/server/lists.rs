//! Listings: `GET /v2/<name>/tags/list`, `GET /v2/_catalog` (only what the caller may see)
//! and `GET /v2/<name>/referrers/<digest>`. Tag and catalog pages follow `n`/`last` and
//! point to the next page with a `Link` header.

use axum::response::Response;
use berth_image::config::MEDIA_OCI_INDEX;
use http::{StatusCode, header};
use serde_json::json;

use super::error::{ApiError, Code};
use super::{Ctx, json_response, manifests, route, set};
use crate::auth::{Action, Scope};

/// One page of `all` (sorted): the entries after `last`, at most `n`; and whether more
/// follow.
fn paginate(all: Vec<String>, last: Option<&str>, n: Option<usize>) -> (Vec<String>, bool) {
    let rest: Vec<String> = match last {
        Some(last) => all.into_iter().filter(|e| e.as_str() > last).collect(),
        None => all,
    };
    match n {
        Some(n) if rest.len() > n => (rest.into_iter().take(n).collect(), true),
        _ => (rest, false),
    }
}

fn page_size(ctx: &Ctx<'_>) -> Result<Option<usize>, ApiError> {
    match ctx.query("n") {
        None => Ok(None),
        Some(n) => n.parse().map(Some).map_err(|_| {
            ApiError::new(Code::Unsupported)
                .status(StatusCode::BAD_REQUEST)
                .detail("n must be a non-negative integer")
        }),
    }
}

fn link_next(resp: &mut Response, path: &str, page: &[String], n: usize) {
    if let Some(last) = page.last() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("last", last)
            .append_pair("n", &n.to_string())
            .finish();
        set(
            resp,
            header::LINK,
            &format!("<{path}?{query}>; rel=\"next\""),
        );
    }
}

pub(super) async fn tags(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Pull])?;
    let n = page_size(ctx)?;
    if !ctx.store.repository_exists(name).await? {
        return Err(ApiError::new(Code::NameUnknown).detail(name.to_string()));
    }
    let all = ctx.store.tags(name).await?;
    let (page, more) = paginate(all, ctx.query("last"), n);
    let body = serde_json::to_vec(&json!({ "name": name, "tags": page })).unwrap_or_default();
    let mut resp = json_response(StatusCode::OK, body, "application/json");
    if more && let Some(n) = n {
        link_next(&mut resp, &format!("/v2/{name}/tags/list"), &page, n);
    }
    Ok(resp)
}

pub(super) async fn catalog(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let principal = ctx
        .state
        .auth
        .authorize(ctx.header(header::AUTHORIZATION), &Scope::catalog())?;
    let max = ctx.state.config.catalog_page_size;
    let n = page_size(ctx)?.map_or(max, |n| n.min(max));
    let visible: Vec<String> = ctx
        .store
        .repositories()
        .await?
        .into_iter()
        .filter(|repo| ctx.state.auth.can_see(&principal, repo))
        .collect();
    let (page, more) = paginate(visible, ctx.query("last"), Some(n));
    let body = serde_json::to_vec(&json!({ "repositories": page })).unwrap_or_default();
    let mut resp = json_response(StatusCode::OK, body, "application/json");
    if more {
        link_next(&mut resp, "/v2/_catalog", &page, n);
    }
    Ok(resp)
}

pub(super) async fn referrers(
    ctx: &Ctx<'_>,
    name: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    ctx.authorize(name, &[Action::Pull])?;
    let subject = route::parse_digest(digest)?;
    let mut found = ctx.store.referrers(name, &subject).await?;
    let filter = ctx.query("artifactType");
    if let Some(wanted) = filter {
        found.retain(|r| r.artifact_type.as_deref() == Some(wanted));
    }
    found.sort_by_key(|r| r.digest);
    let mut resp = json_response(
        StatusCode::OK,
        manifests::referrers_index(&found),
        MEDIA_OCI_INDEX,
    );
    if filter.is_some() {
        set(&mut resp, "oci-filters-applied", "artifactType");
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::paginate;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages() {
        let all = v(&["a", "b", "c", "d"]);
        assert_eq!(paginate(all.clone(), None, Some(2)), (v(&["a", "b"]), true));
        assert_eq!(
            paginate(all.clone(), Some("b"), Some(2)),
            (v(&["c", "d"]), false)
        );
        assert_eq!(
            paginate(all.clone(), Some("bb"), None),
            (v(&["c", "d"]), false)
        );
        assert_eq!(paginate(all.clone(), None, Some(0)), (v(&[]), true));
        assert_eq!(paginate(all, Some("z"), Some(5)), (v(&[]), false));
    }
}
