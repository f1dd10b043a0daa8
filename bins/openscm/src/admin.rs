//! `openscm admin`: accounts, projects, credentials and issuance policies, straight in the store.
//!
//! Output follows the convention of every command (`crate::cli::output`): a table by default,
//! one JSON document with `-o json` (a list as an array; `admin audit` too), times readable UTC
//! in tables and RFC 3339 UTC in JSON. Failures print `{"error": {...}}` on stdout with `-o
//! json`, the message on stderr, and exit with 1.

use clap::Subcommand;
use scm_proto::{AccessKeyId, DomainId, ProjectId};
use serde_json::{Value, json};

use crate::cli::output::{self, Format, Table};
use crate::config::{self, CommonArgs};

const ACCOUNT_EXAMPLES: &str = "\
Examples:
  openscm admin account create --name team-b
  openscm admin account list -o json | jq -r '.[].domain_id'";
const PROJECT_EXAMPLES: &str = "\
Examples:
  openscm admin project create --account ACCOUNT_ID --name cn-north-4
  openscm admin project list --account ACCOUNT_ID";
const CREDENTIAL_EXAMPLES: &str = "\
Examples:
  openscm admin credential create --account ACCOUNT_ID    # shows the secret key, this once
  openscm admin credential create --account ACCOUNT_ID -o json > team-b.json
  openscm admin credential list --account ACCOUNT_ID
  openscm admin credential revoke ACCESS_KEY
The JSON of `credential create` is read by `openscm configure --from-credentials` once it names
the server: jq '. + {endpoint: \"https://scm.example:8443\"}'.";
const POLICY_EXAMPLES: &str = "\
Examples:
  openscm admin policy set --account ACCOUNT_ID --allow '.test;.internal;shop.example'
  openscm admin policy renewal --account ACCOUNT_ID --remaining-fraction 0.5
  openscm admin policy show --account ACCOUNT_ID";
const PUSH_EXAMPLES: &str = "\
Examples:
  openscm admin push --certificate scs1700000000000 --service ELB --region cn-north-4
  openscm admin job list --state pending";
const CERT_EXAMPLES: &str = "\
Examples:
  openscm admin cert history scs1700000000000
  openscm admin cert history scs1700000000000 -o json | jq '.events[-1]'";
const JOB_EXAMPLES: &str = "\
Examples:
  openscm admin job list
  openscm admin job list --state failed --limit 20 -o json";

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts (tenants).
    #[command(after_help = ACCOUNT_EXAMPLES)]
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Projects of an account.
    #[command(after_help = PROJECT_EXAMPLES)]
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// AK/SK credentials.
    #[command(after_help = CREDENTIAL_EXAMPLES)]
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Issuance policy: the name suffixes the built-in CA may issue for in an account.
    #[command(after_help = POLICY_EXAMPLES)]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Queue a push of a certificate to its account's targets; the servers' job workers deliver
    /// it (and retry it). Prints each target's job; follow them with `admin job list`.
    #[command(after_help = PUSH_EXAMPLES)]
    Push {
        /// The certificate id (scs...).
        #[arg(long)]
        certificate: String,
        /// CDN, WAF, ELB or Enhance_ELB.
        #[arg(long)]
        service: String,
        /// The region the targets name (not for CDN).
        #[arg(long)]
        region: Option<String>,
    },
    /// A certificate's versions and the history of its state changes (validation, issuance,
    /// renewal).
    #[command(after_help = CERT_EXAMPLES)]
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Background jobs (pushes and their retries, notifications).
    #[command(after_help = JOB_EXAMPLES)]
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// The audit log: every authenticated state-changing call and key export, the console's
    /// sign-ins (refused ones too) and the changes made with this CLI, newest first.
    #[command(after_help = "Examples:
  openscm admin audit
  openscm admin audit --operation ExportCertificate --since 2026-01-01T00:00:00Z
  openscm admin audit --target scs1700000000000 -o json | jq -r '.[].operation'")]
    Audit(AuditArgs),
}

/// Filters and format of `admin audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only this account (domain id).
    #[arg(long)]
    account: Option<String>,
    /// Only this operation, by its name in the operation table (e.g. ExportCertificate).
    #[arg(long)]
    operation: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Only events naming this id (a certificate, order or CSR id).
    #[arg(long)]
    target: Option<String>,
    /// At most this many events (1..=100000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// `admin cert ...`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Every version (newest first: seq, reason, serial, validity, renewal time) and the
    /// history of state changes (oldest first: time, event, detail, who).
    History {
        /// The certificate id (scs...).
        certificate: String,
    },
}

/// `admin job ...`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: pending, running, done or failed.
        #[arg(long)]
        state: Option<String>,
        /// At most this many (1..=100000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
}

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account with a project named "default"; prints its domain_id, name and
    /// project_id.
    Create {
        /// Unique account name.
        #[arg(long)]
        name: String,
    },
    /// List accounts.
    List,
}

/// Project commands.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project in an account; prints its project_id, domain_id and name.
    Create {
        /// Account (domain) id.
        #[arg(long)]
        account: String,
        /// Project name (by convention a region name).
        #[arg(long)]
        name: String,
    },
    /// List the projects of an account.
    List {
        /// Account (domain) id.
        #[arg(long)]
        account: String,
    },
}

/// Credential commands.
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Create an AK/SK for an account; prints the secret once.
    Create {
        /// Account (domain) id.
        #[arg(long)]
        account: String,
        /// Project the credential defaults to [default: the account's first project].
        #[arg(long)]
        project: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List credentials (never their secrets).
    List {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Revoke a credential: its signatures and tokens stop working.
    Revoke {
        /// The access key.
        access_key: String,
    },
}

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace an account's issuance policy.
    Set {
        /// Account (domain) id.
        #[arg(long)]
        account: String,
        /// `;`-separated name suffixes, e.g. ".test;.internal;example.com".
        #[arg(long)]
        allow: String,
    },
    /// Set an account's renewal window: renew when this fraction of a certificate's lifetime is
    /// left (0.05..=0.9), or `default` for the server's `[renewal] remaining_fraction`. Applies
    /// to versions issued from now on.
    Renewal {
        /// Account (domain) id.
        #[arg(long)]
        account: String,
        /// A fraction such as 0.5, or `default`.
        #[arg(long)]
        remaining_fraction: String,
    },
    /// Show an account's issuance policy: domain_id, name, policy (as stored), allowed (its
    /// suffixes; none: nothing is issued without validation), renew_remaining_fraction (null in
    /// JSON, "server default" in the table, for the server's).
    Show {
        /// Account (domain) id.
        #[arg(long)]
        account: String,
    },
}

fn domain(s: &str) -> anyhow::Result<DomainId> {
    DomainId::try_from(s).map_err(|_| {
        anyhow::anyhow!("{s:?} is not an account (domain) id: 32 lower-case hex characters")
    })
}

/// Prints `doc` (with `-o json`) or `table`. A command that only prints did nothing the audit
/// log records of its own ([`Done::nothing`]).
fn show(format: Format, doc: &Value, table: impl FnOnce() -> Table) -> anyhow::Result<Done> {
    output::print(format, doc, table);
    Done::nothing()
}

/// Prints one object: its JSON, or its fields as FIELD/VALUE rows (in the object's order).
fn show_fields(format: Format, doc: &Value) -> anyhow::Result<Done> {
    show(format, doc, || {
        let pairs: Vec<(&str, Option<String>)> = doc
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str(), cell(v)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        output::fields(&pairs)
    })
}

/// A JSON value as a table cell: strings bare, lists joined, null left out.
fn cell(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(items.iter().filter_map(cell).collect::<Vec<_>>().join("; ")),
        other => Some(other.to_string()),
    }
}

fn rfc3339(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            anyhow::anyhow!("--{flag} {s:?} is not an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
        })?;
    Ok(scm_core::clock::unix_ms(t))
}

async fn audit(scm: &scm_core::Scm, format: Format, a: AuditArgs) -> anyhow::Result<()> {
    if let Some(op) = &a.operation
        && !scm_proto::Operation::ALL.iter().any(|o| o.name() == op)
        && !scm_api::CONSOLE_AUDITED.contains(&op.as_str())
        && !ADMIN_AUDITED.contains(&op.as_str())
    {
        let audited: Vec<&str> = scm_proto::Operation::ALL
            .iter()
            .filter(|o| o.audited())
            .map(|o| o.name())
            .chain(scm_api::CONSOLE_AUDITED.iter().copied())
            .chain(ADMIN_AUDITED.iter().copied())
            .collect();
        anyhow::bail!(
            "--operation {op:?} is not an operation; audited ones: {}",
            audited.join(", ")
        );
    }
    if !(1..=100_000).contains(&a.limit) {
        anyhow::bail!("--limit must be 1..=100000");
    }
    let q = scm_store::AuditQuery {
        account: a.account.as_deref().map(domain).transpose()?,
        operation: a.operation,
        since_ms: a
            .since
            .as_deref()
            .map(|s| rfc3339("since", s))
            .transpose()?,
        until_ms: a
            .until
            .as_deref()
            .map(|s| rfc3339("until", s))
            .transpose()?,
        target: a.target,
        limit: a.limit,
    };
    let events = scm.audit_events(&q).await.map_err(err)?;
    let doc: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "time": output::json_ms(e.at_ms),
                "account": e.account.as_ref().map(DomainId::as_str),
                "credential": e.credential.as_ref().map(AccessKeyId::as_str),
                "operation": e.operation,
                "targets": e.targets,
                "outcome": e.outcome,
                "status": e.status,
                "request_id": e.request_id,
                "source": e.source,
            })
        })
        .collect();
    show(format, &Value::Array(doc), || {
        let mut t = Table::new(&[
            "TIME",
            "ACCOUNT",
            "CREDENTIAL",
            "OPERATION",
            "OUTCOME",
            "STATUS",
            "TARGETS",
            "SOURCE",
            "REQUEST ID",
        ]);
        for e in &events {
            t.row([
                output::when_ms(e.at_ms),
                e.account
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                e.credential
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                e.operation.clone(),
                e.outcome.clone(),
                e.status.to_string(),
                e.targets.join(","),
                e.source.clone(),
                e.request_id.clone(),
            ]);
        }
        t
    })?;
    if events.is_empty() {
        eprintln!("openscm: no audit events match");
    }
    Ok(())
}

fn err(e: scm_core::DomainError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The changes made with this CLI that the audit log records, by the names it records them
/// under (the API's are the operation table's, the console's `scm_api::CONSOLE_AUDITED`).
pub const ADMIN_AUDITED: &[&str] = &[
    "AdminCreateAccount",
    "AdminCreateProject",
    "AdminCreateCredential",
    "AdminRevokeCredential",
    "AdminSetPolicy",
    "AdminSetRenewalPolicy",
    "AdminPush",
];

/// What the audit log records of a command that changes the store: its name, the account it
/// changes and the ids (and, for policies, the new value) it names. `None` for the commands that
/// only read.
fn audited(command: &AdminCommand) -> Option<(&'static str, Option<DomainId>, Vec<String>)> {
    let account = |a: &str| DomainId::try_from(a).ok();
    Some(match command {
        AdminCommand::Account {
            command: AccountCommand::Create { name },
        } => ("AdminCreateAccount", None, vec![format!("name={name}")]),
        AdminCommand::Project {
            command: ProjectCommand::Create { account: a, name },
        } => (
            "AdminCreateProject",
            account(a),
            vec![format!("name={name}")],
        ),
        AdminCommand::Credential {
            command:
                CredentialCommand::Create {
                    account: a,
                    project,
                    ..
                },
        } => (
            "AdminCreateCredential",
            account(a),
            project.iter().cloned().collect(),
        ),
        AdminCommand::Credential {
            command: CredentialCommand::Revoke { access_key },
        } => ("AdminRevokeCredential", None, vec![access_key.clone()]),
        AdminCommand::Policy {
            command: PolicyCommand::Set { account: a, allow },
        } => ("AdminSetPolicy", account(a), vec![format!("allow={allow}")]),
        AdminCommand::Policy {
            command:
                PolicyCommand::Renewal {
                    account: a,
                    remaining_fraction,
                },
        } => (
            "AdminSetRenewalPolicy",
            account(a),
            vec![format!("remaining_fraction={remaining_fraction}")],
        ),
        AdminCommand::Push {
            certificate,
            service,
            region,
        } => (
            "AdminPush",
            None,
            [
                Some(certificate.clone()),
                Some(format!("service={service}")),
            ]
            .into_iter()
            .chain([region.as_ref().map(|r| format!("region={r}"))])
            .flatten()
            .collect(),
        ),
        _ => return None,
    })
}

/// `admin-cli` and who ran it (the user name from the environment, the uid from the kernel).
fn cli_source() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid().to_string())
        .unwrap_or_else(|_| "?".into());
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    // Kept short and printable: it is the operator's word, shown as it is.
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    if user.is_empty() {
        format!("admin-cli uid={uid}")
    } else {
        format!("admin-cli user={user} uid={uid}")
    }
}

/// Runs an admin command, printing in `format`; a change is recorded in the audit log, refused
/// or done.
pub async fn run(common: &CommonArgs, format: Format, command: AdminCommand) -> anyhow::Result<()> {
    let cfg = config::resolve(common, None)?;
    let (scm, store) = crate::server::open_existing(&cfg).await?;
    let record = audited(&command);
    let outcome = command_on(&scm, format, command).await;
    let recorded = match (record, &outcome) {
        (Some((operation, account, mut targets)), outcome) => {
            let (account, outcome) = match outcome {
                Ok(done) => {
                    targets.extend(done.targets.iter().cloned());
                    (account.or_else(|| done.account.clone()), "ok".to_owned())
                }
                Err(_) => (account, "refused".to_owned()),
            };
            let event = scm_store::AuditEvent {
                at_ms: 0,
                account,
                credential: None,
                operation: operation.to_owned(),
                targets,
                outcome,
                status: 0,
                request_id: String::new(),
                source: cli_source(),
            };
            scm.audit(event).await.map_err(|e| {
                anyhow::anyhow!("the change is made, but its audit record was not written: {e}")
            })
        }
        (None, _) => Ok(()),
    };
    store.close().await;
    outcome.map(|_| ()).and(recorded)
}

/// What a command did, for its audit record: the account and ids it created or touched.
#[derive(Debug, Default)]
struct Done {
    account: Option<DomainId>,
    targets: Vec<String>,
}

impl Done {
    fn nothing() -> anyhow::Result<Self> {
        Ok(Self::default())
    }
}

async fn command_on(
    scm: &scm_core::Scm,
    format: Format,
    command: AdminCommand,
) -> anyhow::Result<Done> {
    match command {
        AdminCommand::Audit(a) => audit(scm, format, a).await.and_then(|()| Done::nothing()),
        AdminCommand::Account {
            command: AccountCommand::Create { name },
        } => {
            let (a, p) = scm.create_account(&name).await.map_err(err)?;
            show_fields(
                format,
                &json!({"domain_id": a.domain_id.as_str(), "name": a.name, "project_id": p.project_id.as_str()}),
            )?;
            Ok(Done {
                account: Some(a.domain_id),
                targets: vec![p.project_id.as_str().to_owned()],
            })
        }
        AdminCommand::Account {
            command: AccountCommand::List,
        } => {
            let accounts = scm.accounts().await.map_err(err)?;
            let doc: Vec<Value> = accounts
                .iter()
                .map(|a| json!({"domain_id": a.domain_id.as_str(), "name": a.name, "policy": a.policy}))
                .collect();
            show(format, &Value::Array(doc), || {
                let mut t = Table::new(&["DOMAIN ID", "NAME", "POLICY"]);
                for a in &accounts {
                    t.row([a.domain_id.to_string(), a.name.clone(), a.policy.clone()]);
                }
                t
            })
        }
        AdminCommand::Project {
            command: ProjectCommand::Create { account, name },
        } => {
            let p = scm
                .create_project(&domain(&account)?, &name)
                .await
                .map_err(err)?;
            show_fields(
                format,
                &json!({"project_id": p.project_id.as_str(), "domain_id": p.domain_id.as_str(), "name": p.name}),
            )?;
            Ok(Done {
                account: None,
                targets: vec![p.project_id.as_str().to_owned()],
            })
        }
        AdminCommand::Project {
            command: ProjectCommand::List { account },
        } => {
            let projects = scm.projects(&domain(&account)?).await.map_err(err)?;
            let doc: Vec<Value> = projects
                .iter()
                .map(|p| json!({"project_id": p.project_id.as_str(), "domain_id": p.domain_id.as_str(), "name": p.name}))
                .collect();
            show(format, &Value::Array(doc), || {
                let mut t = Table::new(&["PROJECT ID", "NAME", "DOMAIN ID"]);
                for p in &projects {
                    t.row([
                        p.project_id.to_string(),
                        p.name.clone(),
                        p.domain_id.to_string(),
                    ]);
                }
                t
            })
        }
        AdminCommand::Credential {
            command:
                CredentialCommand::Create {
                    account,
                    project,
                    description,
                },
        } => {
            let project = match project {
                Some(p) => Some(
                    ProjectId::try_from(p.as_str())
                        .map_err(|_| anyhow::anyhow!("{p:?} is not a project id"))?,
                ),
                None => None,
            };
            let c = scm
                .create_credential(&domain(&account)?, project.as_ref(), &description)
                .await
                .map_err(err)?;
            show_fields(
                format,
                &json!({
                    "access_key": c.access_key.as_str(),
                    "secret_key": c.secret_key.expose(),
                    "domain_id": c.domain_id.as_str(),
                    "project_id": c.project_id.as_str(),
                }),
            )?;
            eprintln!("openscm: the secret key is shown this once");
            Ok(Done {
                account: None,
                targets: vec![c.access_key.as_str().to_owned()],
            })
        }
        AdminCommand::Credential {
            command: CredentialCommand::List { account },
        } => {
            let account = account.as_deref().map(domain).transpose()?;
            let creds = scm.credentials(account.as_ref()).await.map_err(err)?;
            let doc: Vec<Value> = creds
                .iter()
                .map(|c| {
                    json!({
                        "access_key": c.access_key.as_str(),
                        "domain_id": c.domain_id.as_str(),
                        "project_id": c.project_id.as_str(),
                        "status": c.status.as_str(),
                        "description": c.description,
                        "created": output::json_ms(c.created_ms),
                        "revoked": c.revoked_ms.map(output::json_ms),
                    })
                })
                .collect();
            show(format, &Value::Array(doc), || {
                let mut t = Table::new(&[
                    "ACCESS KEY",
                    "STATUS",
                    "DOMAIN ID",
                    "PROJECT ID",
                    "CREATED",
                    "REVOKED",
                    "DESCRIPTION",
                ]);
                for c in &creds {
                    t.row([
                        c.access_key.to_string(),
                        c.status.as_str().to_owned(),
                        c.domain_id.to_string(),
                        c.project_id.to_string(),
                        output::when_ms(c.created_ms),
                        c.revoked_ms.map(output::when_ms).unwrap_or_default(),
                        c.description.clone(),
                    ]);
                }
                t
            })
        }
        AdminCommand::Credential {
            command: CredentialCommand::Revoke { access_key },
        } => {
            let ak = AccessKeyId::try_from(access_key.as_str())
                .map_err(|_| anyhow::anyhow!("{access_key:?} is not an access key"))?;
            if scm.revoke_credential(&ak).await.map_err(err)? {
                // Running servers drop their caches within one poll (0.1 s); return after that, so
                // the revocation is in force when this command ends.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                show_fields(
                    format,
                    &json!({"access_key": ak.as_str(), "status": "revoked"}),
                )?;
                Ok(Done {
                    account: scm.credential_account(&ak).await.ok().flatten(),
                    targets: Vec::new(),
                })
            } else {
                anyhow::bail!("no active credential {ak}")
            }
        }
        AdminCommand::Policy {
            command: PolicyCommand::Set { account, allow },
        } => {
            if scm
                .set_policy(&domain(&account)?, &allow)
                .await
                .map_err(err)?
            {
                show_fields(format, &json!({"domain_id": account, "policy": allow}))
            } else {
                anyhow::bail!("no account {account}")
            }
        }
        AdminCommand::Policy {
            command:
                PolicyCommand::Renewal {
                    account,
                    remaining_fraction,
                },
        } => {
            let fraction = match remaining_fraction.as_str() {
                "default" => None,
                f => Some(f.parse::<f64>().map_err(|_| {
                    anyhow::anyhow!(
                        "--remaining-fraction: {f:?} is not a number such as 0.5, or default"
                    )
                })?),
            };
            if scm
                .set_renewal_policy(&domain(&account)?, fraction)
                .await
                .map_err(err)?
            {
                let doc = json!({"domain_id": account, "renew_remaining_fraction": fraction});
                show(format, &doc, || {
                    output::fields(&[
                        ("domain_id", Some(account.clone())),
                        ("renew_remaining_fraction", Some(fraction_text(fraction))),
                    ])
                })
            } else {
                anyhow::bail!("no account {account}")
            }
        }
        AdminCommand::Policy {
            command: PolicyCommand::Show { account },
        } => {
            let id = domain(&account)?;
            let a = scm
                .account(&id)
                .await
                .map_err(err)?
                .ok_or_else(|| anyhow::anyhow!("no account {account}"))?;
            let allowed: Vec<&str> = a
                .policy
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let fraction = a.renew_remaining_permille.map(|p| f64::from(p) / 1000.0);
            let doc = json!({
                "domain_id": a.domain_id.as_str(),
                "name": a.name,
                "policy": a.policy,
                "allowed": allowed,
                "renew_remaining_fraction": fraction,
            });
            show(format, &doc, || {
                output::fields(&[
                    ("domain_id", Some(a.domain_id.to_string())),
                    ("name", Some(a.name.clone())),
                    ("policy", Some(a.policy.clone())),
                    (
                        "allowed",
                        Some(if allowed.is_empty() {
                            "(none: every name is validated)".to_owned()
                        } else {
                            allowed.join(" ")
                        }),
                    ),
                    ("renew_remaining_fraction", Some(fraction_text(fraction))),
                ])
            })
        }
        AdminCommand::Push {
            certificate,
            service,
            region,
        } => {
            let id = scm_proto::CertificateId::try_from(certificate.as_str())
                .map_err(|_| anyhow::anyhow!("{certificate:?} is not a certificate id"))?;
            let service = scm_core::deploy::PushService::parse(&service).ok_or_else(|| {
                anyhow::anyhow!("{service:?} is not one of CDN, WAF, ELB, Enhance_ELB")
            })?;
            let jobs = scm.queue_push(&id, service, region).await.map_err(err)?;
            let doc: Vec<Value> = jobs
                .iter()
                .map(|(target, job)| json!({"target": target, "job_id": job.0}))
                .collect();
            show(format, &json!({"deliveries": doc}), || {
                let mut t = Table::new(&["TARGET", "JOB"]);
                for (target, job) in &jobs {
                    t.row([target.to_string(), job.0.to_string()]);
                }
                t
            })?;
            Ok(Done {
                account: None,
                targets: jobs
                    .iter()
                    .map(|(_, job)| format!("job={}", job.0))
                    .collect(),
            })
        }
        AdminCommand::Cert {
            command: CertCommand::History { certificate },
        } => {
            let id = scm_proto::CertificateId::try_from(certificate.as_str())
                .map_err(|_| anyhow::anyhow!("{certificate:?} is not a certificate id"))?;
            let (versions, events) = scm.certificate_history(&id).await.map_err(err)?;
            let doc = json!({
                "versions": versions.iter().map(|v| json!({
                    "seq": v.seq,
                    "reason": v.reason,
                    "serial": v.issued.serial_hex,
                    "not_before": output::json_ms(v.issued.not_before_ms),
                    "not_after": output::json_ms(v.issued.not_after_ms),
                    "issued": output::json_ms(v.issued.issued_ms),
                    "renew_at": v.renew_at_ms.map(output::json_ms),
                })).collect::<Vec<_>>(),
                "events": events.iter().map(|e| json!({
                    "at": output::json_ms(e.at_ms),
                    "event": e.event,
                    "detail": e.detail,
                    "actor": e.actor,
                })).collect::<Vec<_>>(),
            });
            if format == Format::Json {
                output::print_json(&doc);
                return Done::nothing();
            }
            let mut v = Table::new(&[
                "VERSION",
                "REASON",
                "SERIAL",
                "NOT BEFORE",
                "NOT AFTER",
                "ISSUED",
                "RENEW AT",
            ]);
            for x in &versions {
                v.row([
                    x.seq.to_string(),
                    x.reason.clone(),
                    x.issued.serial_hex.clone(),
                    output::when_ms(x.issued.not_before_ms),
                    output::when_ms(x.issued.not_after_ms),
                    output::when_ms(x.issued.issued_ms),
                    x.renew_at_ms.map(output::when_ms).unwrap_or_default(),
                ]);
            }
            let mut e = Table::new(&["TIME", "EVENT", "DETAIL", "ACTOR"]);
            for x in &events {
                e.row([
                    output::when_ms(x.at_ms),
                    x.event.clone(),
                    x.detail.clone(),
                    x.actor.clone(),
                ]);
            }
            print!("{}\n{}", v.render(), e.render());
            Done::nothing()
        }
        AdminCommand::Job {
            command: JobCommand::List { state, limit },
        } => {
            let state = match state.as_deref() {
                Some(s) => Some(scm_store::JobState::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("{s:?} is not a job state: pending, running, done or failed")
                })?),
                None => None,
            };
            let jobs = scm.jobs(state, limit).await.map_err(err)?;
            let doc: Vec<Value> = jobs
                .iter()
                .map(|j| {
                    json!({
                        "id": j.id.0,
                        "kind": j.kind,
                        "state": j.state.as_str(),
                        "attempts": j.attempts,
                        "max_attempts": j.max_attempts,
                        "due": output::json_ms(j.due_ms),
                        "last_error": j.last_error,
                        "lease_owner": j.lease_owner,
                        "created": output::json_ms(j.created_ms),
                        "finished": j.finished_ms.map(output::json_ms),
                        "payload": serde_json::from_str::<Value>(&j.payload)
                            .unwrap_or(Value::Null),
                    })
                })
                .collect();
            show(format, &Value::Array(doc), || {
                let mut t = Table::new(&[
                    "ID", "KIND", "STATE", "ATTEMPTS", "DUE", "CREATED", "FINISHED", "ERROR",
                ]);
                for j in &jobs {
                    t.row([
                        j.id.0.to_string(),
                        j.kind.clone(),
                        j.state.as_str().to_owned(),
                        format!("{}/{}", j.attempts, j.max_attempts),
                        output::when_ms(j.due_ms),
                        output::when_ms(j.created_ms),
                        j.finished_ms.map(output::when_ms).unwrap_or_default(),
                        j.last_error.clone().unwrap_or_default(),
                    ]);
                }
                t
            })
        }
    }
}

/// A renewal fraction for a table: the number, or the server's default.
fn fraction_text(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "server default".to_owned(), |f| f.to_string())
}
