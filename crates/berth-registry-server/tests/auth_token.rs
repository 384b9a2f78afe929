//! The token endpoint: which scopes are granted to whom, refusals, refresh and robot
//! tokens, and what the audit log says about it.

mod auth_support;

use auth_support::*;
use axum::http::StatusCode;
use berth_registry_server::auth::Role;

#[tokio::test]
async fn grants_only_the_allowed_subset() {
    let f = fixture();
    let ask = |scopes: &[&str]| {
        let mut q = String::from("service=berth-registry");
        for s in scopes {
            q.push_str(&format!("&scope={}", s.replace(',', "%2C")));
        }
        q
    };
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "bob",
            &["repository:acme/app:pull,push"],
            &["repository:acme/app:pull"],
        ),
        (
            "alice",
            &["repository:acme/app:pull,push,delete"],
            &["repository:acme/app:pull,push"],
        ),
        (
            "carol",
            &["repository:acme/app:pull,push,delete"],
            &["repository:acme/app:pull,push,delete"],
        ),
        // Nested names belong to the first component's organisation.
        (
            "alice",
            &["repository:acme/team/app:push"],
            &["repository:acme/team/app:push"],
        ),
        // Another organisation's repositories, however high the role: nothing.
        ("gary", &["repository:acme/app:pull"], &[]),
        (
            "carol",
            &["repository:globex/app:pull", "repository:acme/x:pull"],
            &["repository:acme/x:pull"],
        ),
        // A public repository gives everyone pull, and only pull.
        (
            "gary",
            &["repository:acme/pub:pull,push"],
            &["repository:acme/pub:pull"],
        ),
        // Top-level names belong to no organisation.
        ("carol", &["repository:app:pull"], &[]),
        ("gary", &["registry:catalog:*"], &["registry:catalog:*"]),
    ];
    for (user, asked, expected) in cases {
        let a = get_token(&f.router, &ask(asked), Some((user, PASSWORD))).await;
        assert_eq!(a.status, StatusCode::OK, "{user} {asked:?}: {}", a.body);
        assert_eq!(access(&f, a.token()), *expected, "{user} asking {asked:?}");
        assert_eq!(claims(&f, a.token()).sub, *user);
    }
    // Anonymous: public pulls only, never the catalog.
    let a = get_token(
        &f.router,
        &ask(&[
            "repository:acme/pub:pull,push",
            "repository:acme/app:pull",
            "registry:catalog:*",
        ]),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(access(&f, a.token()), ["repository:acme/pub:pull"]);
    assert_eq!(claims(&f, a.token()).sub, "");
}

#[tokio::test]
async fn answers_in_the_token_flow_format() {
    let f = fixture();
    let a = get_token(
        &f.router,
        "service=berth-registry&scope=repository:acme/app:pull",
        Some(("bob", PASSWORD)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["token"], a.body["access_token"]);
    assert_eq!(a.body["expires_in"], 300);
    assert!(chrono::DateTime::parse_from_rfc3339(a.body["issued_at"].as_str().unwrap()).is_ok());
    assert!(a.body.get("refresh_token").is_none());
    let c = claims(&f, a.token());
    assert_eq!(
        (c.iss.as_str(), c.aud.as_str()),
        ("berth-registry", "berth-registry")
    );
    assert_eq!(c.exp - c.iat, 300);
    assert!(c.nbf <= c.iat && !c.jti.is_empty());
    let header = jsonwebtoken::decode_header(a.token()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(f.auth.key().kid()));
    // Several scopes in one parameter, space-separated, as OAuth2 has them.
    let a = get_token(
        &f.router,
        "scope=repository%3Aacme%2Fa%3Apull%20repository%3Aacme%2Fb%3Apull",
        Some(("bob", PASSWORD)),
    )
    .await;
    assert_eq!(
        access(&f, a.token()),
        ["repository:acme/a:pull", "repository:acme/b:pull"]
    );
    // Another service's tokens are not ours to give; nonsense scopes are refused.
    let a = get_token(
        &f.router,
        "service=elsewhere&scope=repository:acme/app:pull",
        Some(("bob", PASSWORD)),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = get_token(&f.router, "scope=nonsense", Some(("bob", PASSWORD))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_audited() {
    let f = fixture();
    for (user, password) in [
        ("bob", "wrong"),
        ("nobody", PASSWORD),
        ("acme+nothing", "x"),
    ] {
        let a = get_token(
            &f.router,
            "scope=repository:acme/pub:pull",
            Some((user, password)),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(a.body["errors"][0]["code"], "UNAUTHORIZED");
        assert!(a.www_authenticate.unwrap().starts_with("Basic "));
    }
    let a = post_token(
        &f.router,
        &[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "nope"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["errors"][0]["code"], "UNAUTHORIZED");

    let ok = get_token(
        &f.router,
        "scope=repository:acme/app:pull,push",
        Some(("bob", PASSWORD)),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let events = audit_events(&f);
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "token_refused")
        .collect();
    assert_eq!(refused.len(), 4, "{events:#?}");
    assert_eq!(refused[0]["subject"], "bob");
    assert_eq!(refused[1]["subject"], "nobody");
    let granted = events.last().unwrap();
    assert_eq!(granted["event"], "token_granted");
    assert_eq!(granted["subject"], "bob");
    assert_eq!(
        granted["scopes"],
        serde_json::json!(["repository:acme/app:pull"])
    );
    assert!(granted["time"].is_string());
}

#[tokio::test]
async fn refresh_tokens() {
    let f = fixture();
    let login = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    // Without access_type=offline there is no refresh token.
    let a = post_token(&f.router, &login).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.get("refresh_token").is_none());
    let mut form = login.to_vec();
    form.extend([
        ("access_type", "offline"),
        ("client_id", "test"),
        ("service", "berth-registry"),
        (
            "scope",
            "repository:acme/app:pull,push repository:globex/app:pull",
        ),
    ]);
    let a = post_token(&f.router, &form).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(access(&f, a.token()), ["repository:acme/app:pull,push"]);
    let refresh = a.body["refresh_token"].as_str().unwrap().to_string();

    let use_refresh = |scope: &'static str, token: String| {
        let router = f.router.clone();
        async move {
            post_token(
                &router,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let a = use_refresh("repository:acme/other:push", refresh.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(access(&f, a.token()), ["repository:acme/other:push"]);
    assert_eq!(claims(&f, a.token()).sub, "alice");
    // Grants follow the current role, not the one at login.
    f.auth
        .store()
        .add_member("acme", "alice", Role::Pull, None)
        .unwrap();
    let a = use_refresh("repository:acme/other:pull,push", refresh.clone()).await;
    assert_eq!(access(&f, a.token()), ["repository:acme/other:pull"]);
    // Unknown refresh tokens, and all of them after a password change, are refused.
    let a = use_refresh("repository:acme/other:pull", "made-up".into()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    f.auth
        .store()
        .set_password("alice", "new password")
        .unwrap();
    let a = use_refresh("repository:acme/other:pull", refresh).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["errors"][0]["code"], "UNAUTHORIZED");
    // Docker's GET flavour: offline_token=true.
    let a = get_token(
        &f.router,
        "offline_token=true&client_id=docker",
        Some(("bob", PASSWORD)),
    )
    .await;
    assert!(a.body["refresh_token"].is_string());
    let a = post_token(&f.router, &[("grant_type", "client_credentials")]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn robot_tokens() {
    let f = fixture();
    let store = f.auth.store();
    let secret = store.create_robot("acme", "ci", Role::Push).unwrap();
    assert!(store.create_robot("acme", "ci", Role::Pull).is_err());
    let listed = store.list_robots("acme").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].role, listed[0].last_used),
        ("ci", Role::Push, None)
    );

    let q = "scope=repository:acme/app:pull,push,delete&scope=repository:globex/app:pull";
    let a = get_token(&f.router, q, Some(("acme+ci", &secret))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(access(&f, a.token()), ["repository:acme/app:pull,push"]);
    assert_eq!(claims(&f, a.token()).sub, "acme+ci");
    assert!(store.list_robots("acme").unwrap()[0].last_used.is_some());
    // The secret is not stored in the clear anywhere in the database.
    let db = std::fs::read(f.dir.path().join("auth.redb")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
    // Robots are not users, and the wrong secret fails.
    let a = get_token(&f.router, q, Some(("acme+ci", "guess"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = get_token(&f.router, q, Some(("globex+ci", &secret))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    store.revoke_robot("acme", "ci").unwrap();
    let a = get_token(&f.router, q, Some(("acme+ci", &secret))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(store.list_robots("acme").unwrap().is_empty());
    assert!(store.revoke_robot("acme", "ci").is_err());
}

#[tokio::test]
async fn anonymous_and_bearer_requests_to_the_endpoint() {
    let f = fixture();
    let req = axum::http::Request::get("/token?scope=repository:acme/pub:pull")
        .header("authorization", "Bearer something")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(f.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let a = get_token(&f.router, "", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(access(&f, a.token()).is_empty());
    assert!(a.body.get("refresh_token").is_none());
}
