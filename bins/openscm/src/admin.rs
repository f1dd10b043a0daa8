//! `openscm admin`: accounts, projects, credentials and issuance policies, straight in the store.
//! Output is JSON, so scripts can read it.

use clap::Subcommand;
use scm_proto::{AccessKeyId, DomainId, ProjectId};

use crate::config::{self, CommonArgs};

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts (tenants).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Projects of an account.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// AK/SK credentials.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Issuance policy: the name suffixes the built-in CA may issue for in an account.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Queue a push of a certificate to its account's targets; the servers' job workers deliver
    /// it (and retry it). Prints {"job_id"}; follow it with `admin job list`.
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
    /// renewal), as JSON.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Background jobs (pushes and their retries, notifications).
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// The audit log: every authenticated state-changing call and key export, the console's
    /// sign-ins (refused ones too) and the changes made with this CLI, newest first.
    ///
    /// Examples:
    ///   openscm admin audit --operation ExportCertificate --since 2026-01-01T00:00:00Z
    ///   openscm admin audit --target scs1700000000000 --output json
    #[command(verbatim_doc_comment)]
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
    /// `table` (for people) or `json` (JSON lines, one event per line).
    #[arg(long, default_value = "table")]
    output: AuditOutput,
}

/// How `admin audit` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AuditOutput {
    /// Aligned columns.
    Table,
    /// One JSON object per line.
    Json,
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
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account with a project named "default"; prints {domain_id, name, project_id}.
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
    /// Create a project in an account; prints {project_id, domain_id, name}.
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
    /// Show an account's issuance policy; prints {domain_id, name, policy, allowed,
    /// renew_remaining_fraction} (`policy` as stored; `allowed`: its suffixes; an empty list:
    /// nothing is issued without validation; `renew_remaining_fraction`: null for the server's).
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

/// Prints `v`; a command that only prints did nothing the audit log records.
fn print(v: &serde_json::Value) -> anyhow::Result<Done> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Done::nothing()
}

fn rfc3339(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            anyhow::anyhow!("--{flag} {s:?} is not an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
        })?;
    Ok(scm_core::clock::unix_ms(t))
}

fn time_text(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

async fn audit(scm: &scm_core::Scm, a: AuditArgs) -> anyhow::Result<()> {
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
    match a.output {
        AuditOutput::Json => {
            for e in &events {
                let line = serde_json::json!({
                    "time": time_text(e.at_ms),
                    "at_ms": e.at_ms,
                    "account": e.account.as_ref().map(DomainId::as_str),
                    "credential": e.credential.as_ref().map(AccessKeyId::as_str),
                    "operation": e.operation,
                    "targets": e.targets,
                    "outcome": e.outcome,
                    "status": e.status,
                    "request_id": e.request_id,
                    "source": e.source,
                });
                println!("{line}");
            }
        }
        AuditOutput::Table => {
            let header = [
                "TIME",
                "ACCOUNT",
                "CREDENTIAL",
                "OPERATION",
                "OUTCOME",
                "STATUS",
                "TARGETS",
                "SOURCE",
                "REQUEST ID",
            ];
            let rows: Vec<[String; 9]> = events
                .iter()
                .map(|e| {
                    [
                        time_text(e.at_ms),
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
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let mut out = String::new();
                for (cell, w) in cells.iter().zip(widths) {
                    out.push_str(&format!("{cell:<w$}  "));
                }
                println!("{}", out.trim_end());
            };
            line(header.to_vec());
            for row in &rows {
                line(row.iter().map(String::as_str).collect());
            }
            if rows.is_empty() {
                eprintln!("no audit events match");
            }
        }
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

/// Runs an admin command; a change is recorded in the audit log, refused or done.
pub async fn run(common: &CommonArgs, command: AdminCommand) -> anyhow::Result<()> {
    let cfg = config::resolve(common, None)?;
    let (scm, store) = crate::server::open_existing(&cfg).await?;
    let record = audited(&command);
    let outcome = command_on(&scm, command).await;
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
    outcome.and(recorded)
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

async fn command_on(scm: &scm_core::Scm, command: AdminCommand) -> anyhow::Result<Done> {
    match command {
        AdminCommand::Audit(a) => audit(scm, a).await.and_then(|()| Done::nothing()),
        AdminCommand::Account {
            command: AccountCommand::Create { name },
        } => {
            let (a, p) = scm.create_account(&name).await.map_err(err)?;
            print(
                &serde_json::json!({"domain_id": a.domain_id.as_str(), "name": a.name, "project_id": p.project_id.as_str()}),
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
            print(&serde_json::Value::Array(
                accounts
                    .iter()
                    .map(|a| serde_json::json!({"domain_id": a.domain_id.as_str(), "name": a.name, "policy": a.policy}))
                    .collect(),
            ))
        }
        AdminCommand::Project {
            command: ProjectCommand::Create { account, name },
        } => {
            let p = scm
                .create_project(&domain(&account)?, &name)
                .await
                .map_err(err)?;
            print(
                &serde_json::json!({"project_id": p.project_id.as_str(), "domain_id": p.domain_id.as_str(), "name": p.name}),
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
            print(&serde_json::Value::Array(
                projects
                    .iter()
                    .map(|p| serde_json::json!({"project_id": p.project_id.as_str(), "domain_id": p.domain_id.as_str(), "name": p.name}))
                    .collect(),
            ))
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
            print(&serde_json::json!({
                "access_key": c.access_key.as_str(),
                "secret_key": c.secret_key.expose(),
                "domain_id": c.domain_id.as_str(),
                "project_id": c.project_id.as_str(),
            }))?;
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
            print(&serde_json::Value::Array(
                creds
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "access_key": c.access_key.as_str(),
                            "domain_id": c.domain_id.as_str(),
                            "project_id": c.project_id.as_str(),
                            "status": c.status.as_str(),
                            "description": c.description,
                            "created_ms": c.created_ms,
                            "revoked_ms": c.revoked_ms,
                        })
                    })
                    .collect(),
            ))
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
                print(&serde_json::json!({"access_key": ak.as_str(), "status": "revoked"}))?;
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
                print(&serde_json::json!({"domain_id": account, "policy": allow}))
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
                print(
                    &serde_json::json!({"domain_id": account, "renew_remaining_fraction": fraction}),
                )
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
            print(&serde_json::json!({
                "domain_id": a.domain_id.as_str(),
                "name": a.name,
                "policy": a.policy,
                "allowed": allowed,
                "renew_remaining_fraction": a.renew_remaining_permille.map(|p| f64::from(p) / 1000.0),
            }))
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
            let ids: Vec<String> = jobs
                .iter()
                .map(|(_, job)| format!("job={}", job.0))
                .collect();
            let jobs: Vec<_> = jobs
                .iter()
                .map(|(target, job)| serde_json::json!({"target": target, "job_id": job.0}))
                .collect();
            print(&serde_json::json!({"deliveries": jobs}))?;
            Ok(Done {
                account: None,
                targets: ids,
            })
        }
        AdminCommand::Cert {
            command: CertCommand::History { certificate },
        } => {
            let id = scm_proto::CertificateId::try_from(certificate.as_str())
                .map_err(|_| anyhow::anyhow!("{certificate:?} is not a certificate id"))?;
            let (versions, events) = scm.certificate_history(&id).await.map_err(err)?;
            let time = |ms: i64| {
                scm_core::clock::from_unix_ms(ms)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            print(&serde_json::json!({
                "versions": versions.iter().map(|v| serde_json::json!({
                    "seq": v.seq,
                    "reason": v.reason,
                    "serial": v.issued.serial_hex,
                    "not_before": time(v.issued.not_before_ms),
                    "not_after": time(v.issued.not_after_ms),
                    "issued": time(v.issued.issued_ms),
                    "renew_at": v.renew_at_ms.map(time),
                })).collect::<Vec<_>>(),
                "events": events.iter().map(|e| serde_json::json!({
                    "at": time(e.at_ms),
                    "event": e.event,
                    "detail": e.detail,
                    "actor": e.actor,
                })).collect::<Vec<_>>(),
            }))
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
            print(&serde_json::Value::Array(
                jobs.iter()
                    .map(|j| {
                        serde_json::json!({
                            "id": j.id.0,
                            "kind": j.kind,
                            "state": j.state.as_str(),
                            "attempts": j.attempts,
                            "max_attempts": j.max_attempts,
                            "due_ms": j.due_ms,
                            "last_error": j.last_error,
                            "lease_owner": j.lease_owner,
                            "created_ms": j.created_ms,
                            "finished_ms": j.finished_ms,
                            "payload": serde_json::from_str::<serde_json::Value>(&j.payload)
                                .unwrap_or(serde_json::Value::Null),
                        })
                    })
                    .collect(),
            ))
        }
    }
}
