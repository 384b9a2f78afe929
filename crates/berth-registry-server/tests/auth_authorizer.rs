//! `TokenAuthorizer` on registry requests: bearer tokens (good and bad), anonymous and
//! Basic access, challenges, `can_see` and the audit log.

mod auth_support;

use auth_support::*;
use berth_registry_server::auth::{
    AuditEvent, AuthError, Authorizer, Principal, Role, Scope, TokenAuthorizer,
};

fn challenge(e: &AuthError) -> &str {
    match e {
        AuthError::Unauthorized { challenge, .. } | AuthError::Denied { challenge } => challenge,
    }
}

fn is_401(r: &Result<Principal, AuthError>) -> bool {
    matches!(r, Err(AuthError::Unauthorized { .. }))
}

fn is_403(r: &Result<Principal, AuthError>) -> bool {
    matches!(r, Err(AuthError::Denied { .. }))
}

#[tokio::test]
async fn issued_tokens_authorize_exactly_their_grants() {
    let f = fixture();
    let a = get_token(
        &f.router,
        "scope=repository:acme/app:pull,push",
        Some(("bob", PASSWORD)),
    )
    .await;
    let auth = bearer(a.token());
    let p = authorize(&f, Some(&auth), "repository:acme/app:pull").unwrap();
    assert_eq!(p.subject.as_deref(), Some("bob"));
    assert_eq!(
        p.access,
        [Scope::parse("repository:acme/app:pull").unwrap()]
    );
    // A valid token without the scope: 403 with a challenge for the missing scope.
    let r = authorize(&f, Some(&auth), "repository:acme/app:push");
    assert!(is_403(&r), "{r:?}");
    assert_eq!(
        challenge(&r.unwrap_err()),
        "Bearer realm=\"http://registry.test/token\",service=\"berth-registry\",scope=\"repository:acme/app:push\""
    );
    assert!(is_403(&authorize(
        &f,
        Some(&auth),
        "repository:acme/other:pull"
    )));
    assert!(is_403(&authorize(
        &f,
        Some(&auth),
        "repository:acme/app:pull,push"
    )));
    // No credentials at all: 401 with the challenge; the catalog's has no scope.
    let r = authorize(&f, None, "repository:acme/app:pull");
    assert!(is_401(&r));
    assert!(challenge(&r.unwrap_err()).ends_with(",scope=\"repository:acme/app:pull\""));
    let r = authorize(&f, None, "registry:catalog:*");
    assert_eq!(
        challenge(&r.unwrap_err()),
        "Bearer realm=\"http://registry.test/token\",service=\"berth-registry\""
    );
    // docker login's token has no scopes but passes the /v2/ base (catalog) check.
    let login = get_token(
        &f.router,
        "service=berth-registry&client_id=docker",
        Some(("gary", PASSWORD)),
    )
    .await;
    let p = authorize(&f, Some(&bearer(login.token())), "registry:catalog:*").unwrap();
    assert_eq!(p.subject.as_deref(), Some("gary"));
    // An anonymous token does not.
    let anon = get_token(&f.router, "scope=repository:acme/app:pull", None).await;
    assert!(is_401(&authorize(
        &f,
        Some(&bearer(anon.token())),
        "registry:catalog:*"
    )));
    assert!(is_401(&authorize(
        &f,
        Some(&bearer(anon.token())),
        "repository:acme/app:pull"
    )));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let f = fixture();
    let kid = f.auth.key().kid().to_string();
    let root = f.dir.path();
    let scope = "repository:acme/app:pull";
    let good = good_claims(&f, "carol", &[scope]);
    // The control: a token crafted like the service's own is accepted.
    assert!(authorize(&f, Some(&bearer(&sign_with(root, &kid, &good))), scope).is_ok());
    // Small clock skew is tolerated.
    let now = chrono::Utc::now().timestamp();
    let skewed = sign_with(root, &kid, &{
        let mut c = good.clone();
        c.exp = now - 3;
        c.nbf = now + 3;
        c
    });
    assert!(authorize(&f, Some(&bearer(&skewed)), scope).is_ok());

    let other = tempfile::tempdir().unwrap();
    let stranger = TokenAuthorizer::open(other.path(), &Default::default(), REALM.into()).unwrap();
    let with = |edit: fn(&mut berth_registry_server::auth::Claims, i64)| {
        let mut c = good.clone();
        edit(&mut c, now);
        sign_with(root, &kid, &c)
    };
    let bad: Vec<(&str, String)> = vec![
        ("expired", with(|c, now| c.exp = now - 120)),
        ("not yet valid", with(|c, now| c.nbf = now + 120)),
        (
            "wrong audience",
            with(|c, _| c.aud = "other-registry".into()),
        ),
        ("wrong issuer", with(|c, _| c.iss = "someone-else".into())),
        // Signed by another key, claiming ours.
        ("forged", sign_with(other.path(), &kid, &good)),
        (
            "other key",
            sign_with(other.path(), stranger.key().kid(), &good),
        ),
        ("unsigned", {
            let t = sign_with(root, &kid, &good);
            t[..t.rfind('.').unwrap() + 1].to_string()
        }),
        ("tampered", {
            // Same signature, claims rewritten to another subject and organisation.
            let t = sign_with(root, &kid, &good);
            let forged = sign_with(
                root,
                &kid,
                &good_claims(&f, "mallory", &["repository:globex/app:pull"]),
            );
            let parts: Vec<&str> = t.split('.').collect();
            let fparts: Vec<&str> = forged.split('.').collect();
            format!("{}.{}.{}", parts[0], fparts[1], parts[2])
        }),
        ("malformed", "not-a-jwt".into()),
        ("three dots", "a.b.c".into()),
        ("empty", String::new()),
    ];
    for (what, token) in &bad {
        let r = authorize(&f, Some(&bearer(token)), scope);
        assert!(is_401(&r), "{what}: {r:?}");
        if let Err(AuthError::Unauthorized { challenge, .. }) = &r {
            assert!(challenge.contains("scope=\"repository:acme/app:pull\""));
        }
    }
    assert!(is_401(&authorize(&f, Some("Digest abc"), scope)));
    assert!(is_401(&authorize(&f, Some("Bearer"), scope)));
}

#[tokio::test]
async fn anonymous_access_is_public_pull_only() {
    let f = fixture();
    let p = authorize(&f, None, "repository:acme/pub:pull").unwrap();
    assert_eq!(p.subject, None);
    assert!(p.allows("acme/pub", berth_registry_server::auth::Action::Pull));
    assert!(is_401(&authorize(&f, None, "repository:acme/pub:push")));
    assert!(is_401(&authorize(&f, None, "repository:acme/pub:delete")));
    assert!(is_401(&authorize(&f, None, "repository:acme/app:pull")));
    assert!(is_401(&authorize(&f, None, "repository:acme/pub/sub:pull")));
    // Public pulls work with any valid token too, even one issued for something else.
    let a = get_token(
        &f.router,
        "scope=repository:globex/app:pull",
        Some(("gary", PASSWORD)),
    )
    .await;
    assert!(authorize(&f, Some(&bearer(a.token())), "repository:acme/pub:pull").is_ok());
    assert!(is_403(&authorize(
        &f,
        Some(&bearer(a.token())),
        "repository:acme/pub:push"
    )));
    // Making it private again closes it.
    f.auth.store().set_public("acme/pub", false).unwrap();
    assert!(is_401(&authorize(&f, None, "repository:acme/pub:pull")));
}

#[tokio::test]
async fn basic_credentials_on_registry_requests() {
    let f = fixture();
    let p = authorize(
        &f,
        Some(&basic("alice", PASSWORD)),
        "repository:acme/app:pull,push",
    )
    .unwrap();
    assert_eq!(p.subject.as_deref(), Some("alice"));
    assert!(is_403(&authorize(
        &f,
        Some(&basic("alice", PASSWORD)),
        "repository:acme/app:delete"
    )));
    assert!(is_403(&authorize(
        &f,
        Some(&basic("alice", PASSWORD)),
        "repository:globex/app:pull"
    )));
    assert!(
        authorize(
            &f,
            Some(&basic("carol", PASSWORD)),
            "repository:acme/app:delete"
        )
        .is_ok()
    );
    assert!(authorize(&f, Some(&basic("gary", PASSWORD)), "registry:catalog:*").is_ok());
    // Again (the verified-password cache must not let other passwords through).
    assert!(
        authorize(
            &f,
            Some(&basic("alice", PASSWORD)),
            "repository:acme/app:push"
        )
        .is_ok()
    );
    assert!(is_401(&authorize(
        &f,
        Some(&basic("alice", "wrong")),
        "repository:acme/app:pull"
    )));
    assert!(is_401(&authorize(
        &f,
        Some(&basic("alice", "")),
        "repository:acme/app:pull"
    )));
    assert!(is_401(&authorize(
        &f,
        Some("Basic !!!"),
        "repository:acme/app:pull"
    )));
    let secret = f
        .auth
        .store()
        .create_robot("globex", "deploy", Role::Pull)
        .unwrap();
    assert!(
        authorize(
            &f,
            Some(&basic("globex+deploy", &secret)),
            "repository:globex/x:pull"
        )
        .is_ok()
    );
    assert!(is_403(&authorize(
        &f,
        Some(&basic("globex+deploy", &secret)),
        "repository:globex/x:push"
    )));
    f.auth.store().set_password("alice", "changed").unwrap();
    assert!(is_401(&authorize(
        &f,
        Some(&basic("alice", PASSWORD)),
        "repository:acme/app:pull"
    )));
    assert!(
        authorize(
            &f,
            Some(&basic("alice", "changed")),
            "repository:acme/app:pull"
        )
        .is_ok()
    );
    let refused = audit_events(&f)
        .into_iter()
        .filter(|e| e["event"] == "token_refused")
        .count();
    assert_eq!(refused, 3);
}

#[test]
fn can_see_members_and_public_repositories() {
    let f = fixture();
    let who = |subject: Option<&str>| Principal {
        subject: subject.map(String::from),
        access: vec![],
    };
    let secret = f
        .auth
        .store()
        .create_robot("globex", "ci", Role::Pull)
        .unwrap();
    let _ = secret;
    for (subject, repo, visible) in [
        (Some("bob"), "acme/app", true),
        (Some("bob"), "acme/team/app", true),
        (Some("bob"), "globex/app", false),
        (Some("gary"), "globex/app", true),
        (Some("gary"), "acme/app", false),
        (Some("gary"), "acme/pub", true),
        (Some("globex+ci"), "globex/app", true),
        (Some("globex+ci"), "acme/app", false),
        (Some("ghost"), "acme/app", false),
        (None, "acme/pub", true),
        (None, "acme/app", false),
        (Some("carol"), "app", false),
    ] {
        assert_eq!(
            f.auth.can_see(&who(subject), repo),
            visible,
            "{subject:?} {repo}"
        );
    }
    // Membership is read at the time of the check.
    f.auth.store().remove_member("acme", "bob").unwrap();
    assert!(!f.auth.can_see(&who(Some("bob")), "acme/app"));
}

#[test]
fn record_appends_to_the_audit_log() {
    let f = fixture();
    f.auth.record(AuditEvent::Push {
        subject: Some("alice".into()),
        repository: "acme/app".into(),
        reference: "v1".into(),
        digest: "sha256:00".into(),
    });
    f.auth.record(AuditEvent::Delete {
        subject: Some("carol".into()),
        repository: "acme/app".into(),
        reference: "v1".into(),
    });
    let events = audit_events(&f);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "push");
    assert_eq!(events[0]["digest"], "sha256:00");
    assert_eq!(events[1]["event"], "delete");
    let text = std::fs::read_to_string(f.dir.path().join("audit.log")).unwrap();
    assert_eq!(text.lines().count(), 2);
}
