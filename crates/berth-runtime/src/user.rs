//! Resolving `-u`/`User` against the image's `/etc/passwd` and `/etc/group`, without NSS,
//! with runc's rules (`libcontainer/user.GetExecUser`) as Docker applies them.

use crate::SpecError;

/// The largest ID runc accepts.
const MAX_ID: i64 = i32::MAX as i64;

/// The IDs the container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Docker's list: the primary group first, then the memberships found in
    /// `/etc/group`, then `--group-add` (duplicates removed, order kept).
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: i64,
    gid: i64,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: i64,
    members: Vec<&'a str>,
}

/// The lines of an `/etc/passwd` or `/etc/group`, split on `:`; blank and comment lines
/// are skipped. A numeric field that does not parse counts as 0, as in runc.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn num(field: Option<&&str>) -> i64 {
    field.and_then(|f| f.parse().ok()).unwrap_or(0)
}

fn passwd_entries(text: &str) -> Vec<PasswdEntry<'_>> {
    records(text)
        .map(|f| PasswdEntry {
            name: f[0],
            uid: num(f.get(2)),
            gid: num(f.get(3)),
        })
        .collect()
}

/// The home directory of `uid` in an `/etc/passwd`, as runc sets `HOME` when the spec
/// has none: the first entry with that uid, else `/`.
pub fn home_dir(passwd: &str, uid: u32) -> String {
    records(passwd)
        .find(|f| num(f.get(2)) == i64::from(uid))
        .and_then(|f| f.get(5).map(|home| home.to_string()))
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

fn group_entries(text: &str) -> Vec<GroupEntry<'_>> {
    records(text)
        .map(|f| GroupEntry {
            name: f[0],
            gid: num(f.get(2)),
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn in_range(id: i64) -> Result<u32, SpecError> {
    if (0..=MAX_ID).contains(&id) {
        u32::try_from(id).map_err(|_| SpecError::IdOutOfRange)
    } else {
        Err(SpecError::IdOutOfRange)
    }
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, or empty for root) against
/// the image's files (`None`: the file does not exist), then adds `group_add`.
pub fn resolve(
    spec: &str,
    group_add: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, SpecError> {
    let mut fields = spec.splitn(3, ':');
    let user_arg = fields.next().unwrap_or("");
    let group_arg = fields.next().unwrap_or("");
    let uid_arg: Option<i64> = user_arg.parse().ok();
    let gid_arg: Option<i64> = group_arg.parse().ok();

    let users = passwd.map(passwd_entries).unwrap_or_default();
    let groups = group.map(group_entries).unwrap_or_default();

    // A numeric user is always a UID; no user at all means root (UID 0).
    let matched = users.iter().find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(uid)) => u.uid == uid,
        (name, None) => u.name == name,
    });
    let (uid, mut gid, matched_name) = match (matched, uid_arg) {
        (Some(u), _) => (u.uid, u.gid, Some(u.name)),
        (None, _) if user_arg.is_empty() => (0, 0, None),
        (None, Some(uid)) => (uid, 0, None),
        (None, None) => return Err(SpecError::UserNotFound(user_arg.to_string())),
    };
    let uid = in_range(uid)?;

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() {
        // An explicit group replaces the primary group and brings no memberships.
        // A numeric group is always a GID.
        let found = groups.iter().find(|g| match gid_arg {
            Some(id) => g.gid == id,
            None => g.name == group_arg,
        });
        gid = match (found, gid_arg) {
            (Some(g), _) => g.gid,
            (None, Some(id)) => id,
            (None, None) => return Err(SpecError::GroupNotFound(group_arg.to_string())),
        };
    } else if let Some(name) = matched_name {
        supplementary = groups
            .iter()
            .filter(|g| g.members.contains(&name))
            .map(|g| g.gid)
            .collect();
    }

    let mut additional = Vec::new();
    let mut push = |id: u32| {
        if !additional.contains(&id) {
            additional.push(id);
        }
    };
    let gid = in_range(gid)?;
    push(gid);
    for g in supplementary {
        push(in_range(g)?);
    }
    for wanted in group_add {
        let found = groups
            .iter()
            .find(|g| g.name == wanted || g.gid.to_string() == *wanted);
        let id = match (found, wanted.parse::<i64>()) {
            (Some(g), _) => g.gid,
            (None, Ok(id)) => id,
            (None, Err(_)) => return Err(SpecError::GroupNotFound(wanted.clone())),
        };
        push(in_range(id)?);
    }

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment
www-data:x:33:33:www-data:/var/www:/bin/false

nobody:x:65534:65534:nobody:/home:/bin/false
app:x:1000:1000::/home/app:/bin/sh
dup:x:1001:1001::/:/bin/sh
dup:x:1002:1002::/:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
daemon:x:1:app
wheel:x:10:root,app
www-data:x:33:
audio:x:29:app
app:x:1000:
nogroup:x:65534:
";

    fn resolve_with(spec: &str, add: &[&str]) -> Result<ResolvedUser, SpecError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve(spec, &add, Some(PASSWD), Some(GROUP))
    }

    fn user(uid: u32, gid: u32, additional: &[u32]) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: additional.to_vec(),
        }
    }

    #[test]
    fn no_user_is_root_with_roots_memberships() {
        assert_eq!(resolve_with("", &[]).unwrap(), user(0, 0, &[0, 10]));
        assert_eq!(resolve_with("root", &[]).unwrap(), user(0, 0, &[0, 10]));
        assert_eq!(resolve_with("0", &[]).unwrap(), user(0, 0, &[0, 10]));
    }

    #[test]
    fn names_and_uids_resolve_with_memberships() {
        assert_eq!(
            resolve_with("nobody", &[]).unwrap(),
            user(65534, 65534, &[65534])
        );
        assert_eq!(
            resolve_with("app", &[]).unwrap(),
            user(1000, 1000, &[1000, 1, 10, 29])
        );
        assert_eq!(
            resolve_with("1000", &[]).unwrap(),
            user(1000, 1000, &[1000, 1, 10, 29])
        );
        // The first of two entries with one name wins.
        assert_eq!(resolve_with("dup", &[]).unwrap(), user(1001, 1001, &[1001]));
    }

    #[test]
    fn unknown_numeric_user_runs_as_that_uid_with_gid_0() {
        assert_eq!(resolve_with("4242", &[]).unwrap(), user(4242, 0, &[0]));
        assert_eq!(
            resolve_with("4242:4343", &[]).unwrap(),
            user(4242, 4343, &[4343])
        );
    }

    #[test]
    fn explicit_group_replaces_primary_and_drops_memberships() {
        assert_eq!(
            resolve_with("app:www-data", &[]).unwrap(),
            user(1000, 33, &[33])
        );
        assert_eq!(resolve_with("app:33", &[]).unwrap(), user(1000, 33, &[33]));
        assert_eq!(
            resolve_with("nobody:5555", &[]).unwrap(),
            user(65534, 5555, &[5555])
        );
    }

    #[test]
    fn unknown_names_fail_like_docker() {
        let err = resolve_with("xyz", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user xyz: no matching entries in passwd file"
        );
        let err = resolve_with("app:nope", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nope: no matching entries in group file"
        );
        let err = resolve_with("app", &["nope"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nope: no matching entries in group file"
        );
    }

    #[test]
    fn ids_out_of_range_are_refused() {
        let err = resolve_with("2147483648", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        assert!(resolve_with("1:-1", &[]).is_err());
        assert!(resolve_with("1", &["-5"]).is_err());
    }

    #[test]
    fn group_add_appends_names_and_numbers_without_duplicates() {
        let u = resolve_with("nobody", &["audio", "wheel", "7777", "10", "nogroup"]).unwrap();
        assert_eq!(u, user(65534, 65534, &[65534, 29, 10, 7777]));
    }

    #[test]
    fn home_comes_from_the_first_entry_of_the_uid() {
        let passwd = "# c\nroot:x:0:0:root:/root:/bin/sh\nalias:x:0:0::/other:/bin/sh\n\
                      short:x:7:7\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
        assert_eq!(home_dir(passwd, 0), "/root");
        assert_eq!(home_dir(passwd, 65534), "/nonexistent");
        assert_eq!(home_dir(passwd, 7), "/", "no home field");
        assert_eq!(home_dir(passwd, 1000), "/", "unknown uid");
        assert_eq!(home_dir("", 0), "/");
    }

    #[test]
    fn missing_files_allow_numeric_ids_only() {
        assert_eq!(resolve("", &[], None, None).unwrap(), user(0, 0, &[0]));
        assert_eq!(
            resolve("1000:1000", &[], None, None).unwrap(),
            user(1000, 1000, &[1000])
        );
        assert_eq!(
            resolve("42", &["5".into()], None, None).unwrap(),
            user(42, 0, &[0, 5])
        );
        assert!(matches!(
            resolve("app", &[], None, None),
            Err(SpecError::UserNotFound(_))
        ));
        assert!(matches!(
            resolve("0:staff", &[], None, None),
            Err(SpecError::GroupNotFound(_))
        ));
    }
}
