//! The accounts store: passwords, organisations, memberships, robots, public repositories.

use berth_registry_server::auth::store::{hash_password, verify_password};
use berth_registry_server::auth::{AccountStore, Identity, MemberChange, Role, StoreError};

#[test]
fn password_hashing_round_trip() {
    let h = hash_password("s3cret").unwrap();
    assert!(h.starts_with("$argon2id$"), "{h}");
    assert!(verify_password("s3cret", &h));
    assert!(!verify_password("s3cret ", &h));
    assert!(!verify_password("", &h));
    // Salted: the same password hashes differently each time.
    assert_ne!(h, hash_password("s3cret").unwrap());
    assert!(!verify_password("s3cret", "not a hash"));
}

fn roles(store: &AccountStore, user: &str) -> Vec<(String, Role)> {
    match store.identity(user).unwrap() {
        Some(Identity::User { roles, .. }) => roles.into_iter().collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn memberships() {
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::open(dir.path()).unwrap();
    // Password hashes are for the registry's user only.
    let meta = std::fs::metadata(dir.path().join("auth.redb")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    store.create_org("acme").unwrap();
    store.create_org("globex").unwrap();
    assert!(matches!(
        store.create_org("acme"),
        Err(StoreError::Exists { .. })
    ));
    assert!(matches!(
        store.create_org("Bad Name"),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(matches!(
        store.add_member("acme", "dave", Role::Pull, None),
        Err(StoreError::PasswordNeeded(_))
    ));
    assert!(matches!(
        store.add_member("nope", "dave", Role::Pull, Some("pw")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .add_member("acme", "a+b", Role::Pull, Some("pw"))
            .is_err()
    );
    assert_eq!(
        store
            .add_member("acme", "dave", Role::Pull, Some("pw1"))
            .unwrap(),
        MemberChange::UserCreated
    );
    // Joining another organisation keeps the password; re-adding sets the role.
    assert_eq!(
        store
            .add_member("globex", "dave", Role::Admin, Some("ignored"))
            .unwrap(),
        MemberChange::Added
    );
    assert_eq!(
        store.add_member("acme", "dave", Role::Push, None).unwrap(),
        MemberChange::RoleSet
    );
    assert!(store.authenticate("dave", "pw1").unwrap().is_some());
    assert!(store.authenticate("dave", "ignored").unwrap().is_none());
    assert_eq!(
        roles(&store, "dave"),
        [("acme".into(), Role::Push), ("globex".into(), Role::Admin)]
    );
    assert_eq!(
        store.members("acme").unwrap(),
        [("dave".to_string(), Role::Push)]
    );

    let orgs = store.list_orgs().unwrap();
    assert_eq!(
        orgs.iter()
            .map(|o| (o.name.as_str(), o.members))
            .collect::<Vec<_>>(),
        [("acme", 1), ("globex", 1)]
    );

    store.remove_member("acme", "dave").unwrap();
    assert_eq!(roles(&store, "dave"), [("globex".into(), Role::Admin)]);
    assert!(store.remove_member("acme", "dave").is_err());
    // Out of the last organisation: the user is gone.
    store.remove_member("globex", "dave").unwrap();
    assert!(!store.user_exists("dave").unwrap());
    assert!(store.authenticate("dave", "pw1").unwrap().is_none());
}

#[test]
fn deleting_an_organisation_removes_what_belongs_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::open(dir.path()).unwrap();
    for org in ["acme", "globex"] {
        store.create_org(org).unwrap();
    }
    store
        .add_member("acme", "solo", Role::Admin, Some("pw"))
        .unwrap();
    store
        .add_member("acme", "both", Role::Push, Some("pw"))
        .unwrap();
    store
        .add_member("globex", "both", Role::Pull, None)
        .unwrap();
    let secret = store.create_robot("acme", "ci", Role::Push).unwrap();
    store.set_public("acme/pub", true).unwrap();
    store.set_public("globex/pub", true).unwrap();
    let refresh = store.issue_refresh_token("solo", 3600).unwrap();
    assert_eq!(
        store.redeem_refresh_token(&refresh).unwrap().as_deref(),
        Some("solo")
    );

    store.delete_org("acme").unwrap();
    assert!(!store.org_exists("acme").unwrap());
    assert!(!store.user_exists("solo").unwrap());
    assert_eq!(roles(&store, "both"), [("globex".into(), Role::Pull)]);
    assert!(store.authenticate("acme+ci", &secret).unwrap().is_none());
    assert_eq!(store.public_repositories().unwrap(), ["globex/pub"]);
    assert_eq!(store.redeem_refresh_token(&refresh).unwrap(), None);
    assert!(store.delete_org("acme").is_err());
    // A new organisation of the same name starts empty.
    store.create_org("acme").unwrap();
    assert!(store.members("acme").unwrap().is_empty());
    assert!(!store.is_public("acme/pub").unwrap());
}

#[test]
fn public_repositories_need_an_existing_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::open(dir.path()).unwrap();
    store.create_org("acme").unwrap();
    assert!(matches!(
        store.set_public("app", true),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(matches!(
        store.set_public("acme/Bad", true),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(matches!(
        store.set_public("globex/app", true),
        Err(StoreError::NotFound { .. })
    ));
    store.set_public("acme/team/app", true).unwrap();
    assert!(store.is_public("acme/team/app").unwrap());
    assert!(!store.is_public("acme/team").unwrap());
    store.set_public("acme/team/app", false).unwrap();
    assert!(!store.is_public("acme/team/app").unwrap());
}

#[test]
fn refresh_tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = AccountStore::open(dir.path()).unwrap();
    let t = store.issue_refresh_token("x", 0).unwrap();
    assert_eq!(store.redeem_refresh_token(&t).unwrap(), None);
}

#[test]
fn a_second_process_can_change_accounts_while_the_server_has_them_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = AccountStore::open(dir.path()).unwrap();
    server.create_org("acme").unwrap();
    // The admin CLI opens the same file while the server holds it.
    let admin = AccountStore::open(dir.path()).unwrap();
    admin
        .add_member("acme", "erin", Role::Pull, Some("pw"))
        .unwrap();
    admin.set_public("acme/pub", true).unwrap();
    drop(admin);
    assert!(server.authenticate("erin", "pw").unwrap().is_some());
    assert!(server.is_public("acme/pub").unwrap());
}
