//! `berth-registry admin --root DIR …`: organisations, users, robot tokens, public
//! repositories and the audit log of a registry root. Works while the server runs (the
//! accounts database is shared between processes).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_registry_server::auth::store::format_timestamp;
use berth_registry_server::auth::{AccountStore, MemberChange, Role, audit};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The registry root: where `auth.redb`, the token key and `audit.log` live.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Organisations (the first path component of their repositories).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users and their role in each organisation.
    #[command(subcommand)]
    User(UserCommand),
    /// Robot tokens: credentials of one organisation for CI and deployments.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Public repositories (anyone may pull them).
    #[command(subcommand)]
    Repo(RepoCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    Create {
        org: String,
    },
    /// Deletes the organisation's members, robots and public marks (not its images).
    Delete {
        org: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds USER to ORG with ROLE, creating the user (password read from stdin, one line)
    /// if it doesn't exist; for an existing user only the membership or role changes.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        user: String,
    },
    /// Removes USER from ORG; a user left in no organisation is deleted.
    Remove {
        #[arg(long)]
        org: String,
        user: String,
    },
    /// Sets USER's password (read from stdin, one line) and revokes its refresh tokens.
    Passwd { user: String },
    /// The members of ORG.
    List {
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Creates robot token NAME (it logs in as ORG+NAME) and prints its secret, once.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        name: String,
    },
    Revoke {
        #[arg(long)]
        org: String,
        name: String,
    },
    List {
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Lets anyone pull ORG/REPO, without credentials.
    SetPublic {
        repository: String,
    },
    SetPrivate {
        repository: String,
    },
    /// The public repositories.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prints the last records, one JSON object per line.
    Tail {
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        n: usize,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// Reads one line from stdin (prompting when it is a terminal) without its line ending.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("empty password (give it on stdin, one line)");
    }
    Ok(password)
}

fn open(root: &Path) -> anyhow::Result<AccountStore> {
    AccountStore::open(root).with_context(|| format!("opening accounts under {}", root.display()))
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let root = args.root.as_path();
    match args.command {
        AdminCommand::Org(cmd) => org(&open(root)?, cmd),
        AdminCommand::User(cmd) => user(&open(root)?, cmd),
        AdminCommand::Token(cmd) => token(&open(root)?, cmd),
        AdminCommand::Repo(cmd) => repo(&open(root)?, cmd),
        AdminCommand::Audit(AuditCommand::Tail { n }) => {
            let records = audit::tail(root, n).context("reading the audit log")?;
            let mut out = std::io::stdout().lock();
            for r in records {
                writeln!(out, "{}", r.to_json())?;
            }
            Ok(())
        }
    }
}

fn org(store: &AccountStore, cmd: OrgCommand) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Create { org } => {
            store.create_org(&org)?;
            println!("created organisation {org}");
        }
        OrgCommand::Delete { org } => {
            store.delete_org(&org)?;
            println!("deleted organisation {org}");
        }
        OrgCommand::List => {
            println!(
                "{:<24} {:>7} {:>6} {:>6}  CREATED",
                "ORGANISATION", "MEMBERS", "ROBOTS", "PUBLIC"
            );
            for o in store.list_orgs()? {
                println!(
                    "{:<24} {:>7} {:>6} {:>6}  {}",
                    o.name,
                    o.members,
                    o.robots,
                    o.public_repositories,
                    format_timestamp(o.created)
                );
            }
        }
    }
    Ok(())
}

fn user(store: &AccountStore, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { org, role, user } => {
            // Only a new user needs a password; an existing one just gains the membership.
            let password = if store.user_exists(&user)? {
                None
            } else {
                Some(read_password("Password")?)
            };
            match store.add_member(&org, &user, role, password.as_deref())? {
                MemberChange::UserCreated => {
                    println!("created user {user} with role {role} in {org}")
                }
                MemberChange::Added => println!("added {user} to {org} with role {role}"),
                MemberChange::RoleSet => println!("{user} now has role {role} in {org}"),
            }
        }
        UserCommand::Remove { org, user } => {
            store.remove_member(&org, &user)?;
            println!("removed {user} from {org}");
        }
        UserCommand::Passwd { user } => {
            if !store.user_exists(&user)? {
                bail!("no such user: {user}");
            }
            store.set_password(&user, &read_password("New password")?)?;
            println!("password of {user} changed");
        }
        UserCommand::List { org } => {
            if !store.org_exists(&org)? {
                bail!("no such organisation: {org}");
            }
            println!("{:<32} ROLE", "USER");
            for (name, role) in store.members(&org)? {
                println!("{name:<32} {role}");
            }
        }
    }
    Ok(())
}

fn token(store: &AccountStore, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { org, role, name } => {
            let secret = store.create_robot(&org, &name, role)?;
            eprintln!("robot token {org}+{name} ({role}); its secret is shown only this once:");
            println!("{secret}");
        }
        TokenCommand::Revoke { org, name } => {
            store.revoke_robot(&org, &name)?;
            println!("revoked {org}+{name}");
        }
        TokenCommand::List { org } => {
            if !store.org_exists(&org)? {
                bail!("no such organisation: {org}");
            }
            println!("{:<32} {:<6} {:<20} LAST USED", "NAME", "ROLE", "CREATED");
            for r in store.list_robots(&org)? {
                println!(
                    "{:<32} {:<6} {:<20} {}",
                    format!("{}+{}", r.org, r.name),
                    r.role.as_str(),
                    format_timestamp(r.created),
                    r.last_used
                        .map_or_else(|| "never".to_string(), format_timestamp)
                );
            }
        }
    }
    Ok(())
}

fn repo(store: &AccountStore, cmd: RepoCommand) -> anyhow::Result<()> {
    match cmd {
        RepoCommand::SetPublic { repository } => {
            store.set_public(&repository, true)?;
            println!("{repository} is public");
        }
        RepoCommand::SetPrivate { repository } => {
            store.set_public(&repository, false)?;
            println!("{repository} is private");
        }
        RepoCommand::List => {
            for r in store.public_repositories()? {
                println!("{r}");
            }
        }
    }
    Ok(())
}
