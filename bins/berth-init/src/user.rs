//! Docker's `--user` resolved against the image's own /etc/passwd and /etc/group. A static
//! binary has no NSS, and the image's files are what the container would see anyway.

/// The identity the entrypoint runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
    pub name: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

/// (name, gid, members)
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) like runc does:
/// a name must exist, a number need not (then gid 0 and home `/`).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Creds, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|e| e.name == user)
                .ok_or_else(|| {
                    format!("unable to find user {user}: no matching entries in passwd file")
                })?,
        ),
    };
    let uid = match &entry {
        Some(e) => e.uid,
        None => user.parse().map_err(|_| format!("invalid user {user}"))?,
    };
    let mut gid = entry.as_ref().map_or(0, |e| e.gid);
    let home = entry.as_ref().map_or("/", |e| e.home).to_string();
    let name = entry.as_ref().map(|e| e.name.to_string());
    let mut groups = Vec::new();
    match grp {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_entries(group)
                    .find(|(n, _, _)| *n == g)
                    .map(|(_, id, _)| id)
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?,
            };
        }
        _ => {
            // Only without an explicit group do the user's supplementary groups apply.
            if let Some(n) = &name {
                groups.extend(
                    group_entries(group)
                        .filter(|(_, _, members)| members.contains(&n.as_str()))
                        .map(|(_, id, _)| id),
                );
            }
        }
    }
    if !groups.contains(&gid) {
        groups.insert(0, gid);
    }
    Ok(Creds {
        uid,
        gid,
        groups,
        home,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/usr/sbin:/bin/false\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\naudio:x:29:app\nnogroup:x:65534:\n";

    #[test]
    fn resolves_like_runc() {
        let r = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let r = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(r.groups, vec![1000, 10, 29]);
        let r = resolve("1000", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.name.as_deref()), (1000, 1000, Some("app")));
        let r = resolve("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.home.as_str(), r.groups.clone()),
            (4242, 0, "/", vec![0])
        );
        let r = resolve("app:audio", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.groups.clone()), (1000, 29, vec![29]));
        let r = resolve("nobody:7", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid), (65534, 7));
        let r = resolve("4242:4343", "", "").unwrap();
        assert_eq!((r.uid, r.gid), (4242, 4343));
        assert!(
            resolve("ghost", PASSWD, GROUP)
                .unwrap_err()
                .contains("unable to find user ghost")
        );
        assert!(
            resolve("app:ghosts", PASSWD, GROUP)
                .unwrap_err()
                .contains("group ghosts")
        );
    }
}
