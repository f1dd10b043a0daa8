//! `openscm cert ...`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use scm_client::ListQuery;
use scm_proto::import::ImportCertificateBody;
use scm_proto::v3::{ApplicationBody, PurchaseBody, PushBody};
use serde_json::json;

use super::output::{self, Format, Table};
use super::page::{self, Page, PageArgs};
use super::profile::write_new_file;
use super::{Ctx, Failure, exit, read_text, stderr_is_terminal, stdin_is_terminal};

// Every example below runs as written in tests/e2e/test_cli.py (test_every_help_example_runs),
// in the order of `--help`, after those of `openscm --help` and `openscm admin`; the rule that
// replaces the id placeholders (scs1700000000000, scs1700000000001, CSR_ID, ...) is written there.
const LIST_EXAMPLES: &str = "\
Examples:
  openscm cert list                                   # the newest 10; stderr says if there are more
  openscm cert list --all --status ALL                # every one, fetched page by page
  openscm cert list --limit 5 --offset 5
  openscm cert list --status ISSUED --content shop.test -o json | jq -r '.[].id'";
const BUY_EXAMPLES: &str = "\
Examples:
  openscm cert buy                                    # one DV single-domain certificate, 1 year
  openscm cert buy --domain-type MULTI_DOMAIN --domains 3   # room for 3 names (--sans of apply)
  openscm cert buy --count 20 --concurrency 8 -o json > bought.json
With --count above 1, each certificate is its own order; a progress bar is drawn on a terminal,
and a failure stops the run: the summary lists the ids bought, the failure and how many were not
started (exit code 5).";
const APPLY_EXAMPLES: &str = "\
Examples:
  openscm cert buy --domain-type MULTI_DOMAIN --domains 2   # two names: the domain and one SAN
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout shop.key \\
      -out shop.csr -subj /CN=shop.test -addext subjectAltName=DNS:shop.test,DNS:www.shop.test
  openscm cert apply scs1700000000000 --domain shop.test --sans www.shop.test --csr shop.csr
  openscm cert buy                                    # a single-domain certificate: one name
  openscm cert apply scs1700000000000 --domain www.shop.test \\
      --applicant-name 'Tom Smith' --applicant-phone 13212345678 --applicant-email tom@shop.test
The names (--domain and each of --sans) must fit the product bought: a SINGLE_DOMAIN certificate
takes one name, a MULTI_DOMAIN one as many as its --domains, a WILDCARD one a *.name. A --csr
must name the same names (its subject alternative names).";
const EXPORT_EXAMPLES: &str = "\
Examples:
  openscm cert export scs1700000000000 --dir ./out      # out/<id>.crt (cert + chain), <id>.key
  P12_PASS=... openscm cert export scs1700000000000 --dir ./out --name shop --pkcs12 \\
      --password-env P12_PASS                           # also out/shop.p12
The key is written with mode 0600. The PKCS#12 file (PBES2 AES-256-CBC, HMAC-SHA256 MAC) is read
by `openssl pkcs12` (OpenSSL 3) and `keytool -storetype PKCS12` (Java 17).";
const IMPORT_EXAMPLES: &str = "\
Examples:
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \\
      -subj /CN=site.shop.test -addext subjectAltName=DNS:site.shop.test \\
      -addext basicConstraints=critical,CA:FALSE -keyout site.key -out site.crt   # self-signed
  openscm cert import site.crt                 # the key from site.key beside it
  cat site.crt site.key > site.pem && openscm cert import site.pem --name site-2
  mkdir -p certs && cp site.crt site.key certs/ && openscm cert import ./certs -o json
Layout: each NAME.crt or NAME.pem holds the certificate first, then its chain; the key is either
in the same file (a PRIVATE KEY block) or in NAME.key beside it. The certificate is named NAME.
A directory is imported with bounded concurrency and a progress bar; a failure stops the run and
the summary lists what was imported, the failure and the files not done (exit code 5).";
const PUSH_EXAMPLES: &str = "\
Examples:
  openscm cert push scs1700000000000 --service ELB --region cn-north-4   # every matching target
  openscm cert push scs1700000000000 --target edge       # one push target, by name
  openscm cert deployments scs1700000000000              # where it is now
Exit code 0: every target took it (and serves it, when it has a TLS check); 6: a target failed
for now and is retried in the background (the message says when); 1: refused or given up, or no
push target of that name (the targets are the server's [[push_targets]]).";
const DEPLOYMENTS_EXAMPLES: &str = "\
Examples:
  openscm cert deployments scs1700000000000
  openscm cert deployments scs1700000000000 -o json";
const DEPLOYED_EXAMPLES: &str = "\
Examples:
  openscm cert deployed scs1700000000000
  openscm cert deployed scs1700000000000 scs1700000000001 --service ELB -o json";
const HISTORY_EXAMPLES: &str = "\
Examples:
  openscm cert history scs1700000000000
  openscm cert history scs1700000000000 -o json | jq -r '.push_history_list[].push_time'
The push history is the API's (the last 10 pushes, newest first; the profile's project id is
needed). `cert show` lists the certificate's versions and state changes.";
const NOTIFICATIONS_EXAMPLES: &str = "\
Examples:
  openscm cert notifications scs1700000000000 off                   # no expiry reminders
  openscm cert notifications scs1700000000000 on --kind CERT_EXPIRED  # only the one at expiry
Reminders are on for every certificate until turned off; CERT_EXPIRING is sent some days before
expiry (the server's [notifications] expiring_days), CERT_EXPIRED when it passes, through the
account's notifiers.";
const RENEW_EXAMPLES: &str = "\
Examples:
  openscm cert renew scs1700000000000
  openscm cert show scs1700000000000                    # version 2 (current) once issued";
const AUTO_RENEW_EXAMPLES: &str = "\
Examples:
  openscm cert auto-renew scs1700000000000 off
  openscm cert auto-renew scs1700000000000 on";
const DELETE_EXAMPLES: &str = "\
Examples:
  openscm cert delete scs1700000000000 scs1700000000001
Certificates that are issued, expired, revoked, imported or refused can be deleted; a bought
certificate not issued yet is removed with `cert unsubscribe`.";
const UNSUBSCRIBE_EXAMPLES: &str = "\
Examples:
  openscm cert buy
  openscm cert unsubscribe scs1700000000000
Unsubscribing cancels the order of a bought certificate (any status but imported) and removes
it, as the API's UnsubscribeCertificate; an imported certificate is removed with `cert delete`.";
const CANCEL_EXAMPLES: &str = "\
Examples:
  openscm cert buy
  openscm cert apply scs1700000000000 --domain www.shop.example.org   # outside the account's policy
  openscm cert cancel scs1700000000000
An application is under review while its names are being validated (status CHECKING,
CHECKING_DOMAIN or CHECKING_ORG); cancelled, the certificate is PAID again and can be applied for
anew.";
const REVOKE_EXAMPLES: &str = "\
Examples:
  openscm cert revoke scs1700000000000 --reason superseded --yes      # no question (scripts)
Without --yes the certificate is shown and a question asked on stderr, answered on stdin (yes or
y); anything else, or no answer, revokes nothing (exit code 2). Revocation cannot be undone: the
certificate is REVOKED and its CA's CRL lists it at once. An RFC 5280 reason name
(keyCompromise, superseded, cessationOfOperation, affiliationChanged, ...) also becomes the
reason code of the CRL entry.";
const SHOW_EXAMPLES: &str = "\
Examples:
  openscm cert show scs1700000000000
  openscm cert show scs1700000000000 -o json | jq -r .status";

/// `openscm cert` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// List certificates.
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Show one certificate.
    #[command(after_help = SHOW_EXAMPLES)]
    Show {
        /// Certificate id.
        id: String,
    },
    /// Buy certificates (status PAID), one or many.
    #[command(after_help = BUY_EXAMPLES)]
    Buy(BuyArgs),
    /// Apply for (issue) a bought certificate.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// Export a certificate, its chain and key to files (PEM, optionally PKCS#12).
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Push a certificate to a service (a configured push target).
    #[command(after_help = PUSH_EXAMPLES)]
    Push(PushArgs),
    /// Where a certificate is deployed: per push target, the version it holds, whether it is
    /// served, failures and drift; then the latest delivery attempts.
    #[command(after_help = DEPLOYMENTS_EXAMPLES)]
    Deployments {
        /// Certificate id.
        id: String,
    },
    /// The resources certificates are deployed to, by service and region (the API's
    /// ListDeployedResources; up to 50 certificates at once).
    #[command(after_help = DEPLOYED_EXAMPLES)]
    Deployed(DeployedArgs),
    /// The push history of a certificate: its last 10 pushes (service, region, time).
    #[command(after_help = HISTORY_EXAMPLES, visible_alias = "push-history")]
    History {
        /// Certificate id.
        id: String,
    },
    /// Renew a certificate now: a new key, the same names, the next version (pushed again where
    /// the current one was delivered). OpenSCM also renews by itself before expiry.
    #[command(after_help = RENEW_EXAMPLES)]
    Renew {
        /// Certificate id.
        id: String,
    },
    /// Turn a certificate's automatic renewal on or off.
    #[command(after_help = AUTO_RENEW_EXAMPLES)]
    AutoRenew {
        /// Certificate id.
        id: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        switch: String,
    },
    /// Turn a certificate's expiry reminders on or off.
    #[command(after_help = NOTIFICATIONS_EXAMPLES)]
    Notifications(NotificationsArgs),
    /// Revoke an issued certificate (asks for confirmation; cannot be undone).
    #[command(after_help = REVOKE_EXAMPLES)]
    Revoke(RevokeArgs),
    /// Import certificates made elsewhere, from a PEM file or a directory of them.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Delete certificates (issued, expired, revoked, imported or refused ones).
    #[command(after_help = DELETE_EXAMPLES)]
    Delete {
        /// Certificate ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Withdraw an application under review (the certificate is PAID again).
    #[command(after_help = CANCEL_EXAMPLES)]
    Cancel {
        /// Certificate id.
        id: String,
    },
    /// Remove bought certificates: their orders are cancelled (UnsubscribeCertificate).
    #[command(after_help = UNSUBSCRIBE_EXAMPLES)]
    Unsubscribe {
        /// Certificate ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `cert deployed`.
#[derive(Debug, Args)]
pub struct DeployedArgs {
    /// Certificate ids (1 to 50).
    #[arg(required = true, num_args = 1..=50)]
    ids: Vec<String>,
    /// Only this service: ELB, CDN, WAF, or ALL.
    #[arg(long, default_value = "ALL", value_parser = ["ALL", "ELB", "CDN", "WAF"])]
    service: String,
}

/// `cert notifications`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Certificate id.
    id: String,
    /// on or off.
    #[arg(value_parser = ["on", "off"])]
    switch: String,
    /// Only this kind of reminder (repeatable) [default: both].
    #[arg(long, value_parser = ["CERT_EXPIRING", "CERT_EXPIRED"])]
    kind: Vec<String>,
}

/// `cert list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status (e.g. ISSUED, PAID, UPLOAD) or ALL.
    #[arg(long)]
    status: Option<String>,
    /// Name or domain contains this.
    #[arg(long)]
    content: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// `cert buy`.
#[derive(Debug, Args)]
pub struct BuyArgs {
    /// Brand.
    #[arg(long, default_value = "GLOBALSIGN")]
    brand: String,
    /// Type.
    #[arg(long = "type", default_value = "DV_SSL_CERT")]
    cert_type: String,
    /// SINGLE_DOMAIN, MULTI_DOMAIN or WILDCARD.
    #[arg(long, default_value = "SINGLE_DOMAIN")]
    domain_type: String,
    /// Validity in years.
    #[arg(long, default_value_t = 1)]
    years: i64,
    /// Domain names per certificate.
    #[arg(long, default_value_t = 1)]
    domains: i64,
    /// How many certificates (each its own order).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Orders placed at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
}

/// `cert apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Certificate id.
    id: String,
    /// Primary domain.
    #[arg(long)]
    domain: String,
    /// Further names, `;`-separated (multi-domain certificates).
    #[arg(long)]
    sans: Option<String>,
    /// A CSR file (PEM) to certify instead of a key made by the server.
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Key algorithm of a key the server makes: EC_P256, EC_P384, RSA_2048, ...
    #[arg(long, default_value = "EC_P256")]
    key_algorithm: String,
    /// Validation method: DNS, FILE or EMAIL.
    #[arg(long, default_value = "DNS")]
    domain_method: String,
    /// Applicant name.
    #[arg(long, default_value = "OpenSCM CLI")]
    applicant_name: String,
    /// Applicant phone.
    #[arg(long, default_value = "13000000000")]
    applicant_phone: String,
    /// Applicant email.
    #[arg(long, default_value = "admin@example.com")]
    applicant_email: String,
    /// Company name (OV/EV).
    #[arg(long)]
    company_name: Option<String>,
    /// Country code (OV/EV).
    #[arg(long)]
    country: Option<String>,
}

/// `cert export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Certificate id.
    id: String,
    /// Directory to write into (made if missing).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// File name stem and PKCS#12 friendly name [default: the certificate id].
    #[arg(long)]
    name: Option<String>,
    /// Also write NAME.p12 (PKCS#12) with a password.
    #[arg(long)]
    pkcs12: bool,
    /// The PKCS#12 password is the first line of this file.
    #[arg(long, requires = "pkcs12", conflicts_with = "password_env")]
    password_file: Option<PathBuf>,
    /// The PKCS#12 password is in this environment variable.
    #[arg(long, requires = "pkcs12", value_name = "VAR")]
    password_env: Option<String>,
    /// Export this version (1, 2, ...; `cert show` lists them) instead of the current one.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    version: Option<u32>,
}

/// `cert import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A PEM file, or a directory of them.
    path: PathBuf,
    /// Name of the certificate (a single file only) [default: the file's stem].
    #[arg(long)]
    name: Option<String>,
    /// Imports at once (a directory).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
}

/// `cert push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Certificate id.
    id: String,
    /// Target service: ELB, Enhance_ELB, CDN, WAF (every target of the account for it).
    #[arg(long, required_unless_present = "target", conflicts_with = "target")]
    service: Option<String>,
    /// Target region (the push target's `region`).
    #[arg(long, conflicts_with = "target")]
    region: Option<String>,
    /// One push target of the account, by name (a failed or stale target pushed again).
    #[arg(long)]
    target: Option<String>,
}

/// `cert revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Certificate id.
    id: String,
    /// Why (at most 63 characters), shown as the certificate's revoke_reason.
    #[arg(long)]
    reason: String,
    /// Revoke without asking.
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Runs a `cert` subcommand; answers the exit code.
pub async fn run(ctx: &Ctx, command: CertCommand) -> Result<u8, Failure> {
    match command {
        CertCommand::List(args) => list(ctx, args).await,
        CertCommand::Show { id } => show(ctx, &id).await,
        CertCommand::Buy(args) => buy(ctx, args).await,
        CertCommand::Apply(args) => apply(ctx, args).await,
        CertCommand::Export(args) => export(ctx, args).await,
        CertCommand::Import(args) => import(ctx, args).await,
        CertCommand::Push(PushArgs {
            id,
            target: Some(target),
            ..
        }) => {
            let r = ctx.client.push_to_target(&id, &target).await?;
            output::print(ctx.format, &r, || {
                output::fields(&[
                    ("pushed", Some(r.certificate_id.clone())),
                    ("target", Some(r.target.clone())),
                    ("state", Some(r.state.clone())),
                    ("version", Some(r.version.to_string())),
                ])
            });
            Ok(0)
        }
        CertCommand::Deployments { id } => deployments(ctx, &id).await,
        CertCommand::Push(args) => {
            let body = PushBody {
                target_project: args.region.clone(),
                target_service: args.service.clone(),
            };
            ctx.client.push(&args.id, &body).await?;
            let doc =
                json!({"certificate_id": args.id, "service": args.service, "region": args.region});
            output::print(ctx.format, &doc, || {
                output::fields(&[
                    ("pushed", Some(args.id.clone())),
                    ("service", args.service.clone()),
                    ("region", args.region.clone()),
                ])
            });
            Ok(0)
        }
        CertCommand::Renew { id } => {
            let r = ctx.client.renew(&id).await?;
            output::print(ctx.format, &r, || {
                output::fields(&[
                    ("renewing", Some(r.certificate_id.clone())),
                    ("version", Some(r.renewing_version.to_string())),
                    (
                        "next",
                        Some(format!(
                            "version {} when issued (openscm cert show {id})",
                            r.renewing_version + 1
                        )),
                    ),
                ])
            });
            Ok(0)
        }
        CertCommand::AutoRenew { id, switch } => {
            let r = ctx.client.set_auto_renew(&id, switch == "on").await?;
            output::print(ctx.format, &r, || {
                output::fields(&[
                    ("certificate", Some(r.certificate_id.clone())),
                    (
                        "auto_renew",
                        Some(if r.auto_renew { "on" } else { "off" }.into()),
                    ),
                ])
            });
            Ok(0)
        }
        CertCommand::Revoke(args) => revoke(ctx, args).await,
        CertCommand::Delete { ids } => delete(ctx, ids).await,
        CertCommand::Deployed(args) => deployed(ctx, args).await,
        CertCommand::History { id } => history(ctx, &id).await,
        CertCommand::Notifications(args) => notifications(ctx, args).await,
        CertCommand::Cancel { id } => {
            let r = ctx.client.cancel_certificate_request(&id).await?;
            let shown = ctx.client.show(&id).await?;
            let doc =
                json!({"certificate_id": r.cert_id, "message": r.message, "status": shown.status});
            output::print(ctx.format, &doc, || {
                output::fields(&[
                    ("cancelled", Some(id.clone())),
                    ("status", Some(shown.status.clone())),
                ])
            });
            Ok(0)
        }
        CertCommand::Unsubscribe { ids } => {
            remove_each(ctx.format, "unsubscribed", ids, |id| async move {
                ctx.client.unsubscribe(&id).await.map(|_| ())
            })
            .await
        }
    }
}

/// `cert deployed`: one row per resource (or per service and region without resources).
async fn deployed(ctx: &Ctx, args: DeployedArgs) -> Result<u8, Failure> {
    let body = scm_proto::deploy::ListDeployedBody {
        certificate_ids: Some(args.ids.clone()),
        service_names: Some(vec![args.service.clone()]),
    };
    let r = ctx.client.deployed_resources(&body).await?;
    if r.results.iter().all(|c| c.deployed_resources.is_empty()) {
        eprintln!("openscm: not deployed anywhere (service {})", args.service);
    }
    output::print(ctx.format, &r, || {
        let mut t = Table::new(&["CERTIFICATE", "SERVICE", "REGION", "RESOURCE", "ERROR"]);
        for c in &r.results {
            if c.deployed_resources.is_empty() {
                t.row([c.certificate_id.clone(), "(none)".to_owned()]);
            }
            for d in &c.deployed_resources {
                for region in &d.region_resources {
                    let error = if region.is_error { "yes" } else { "" };
                    if region.resources.is_empty() {
                        t.row([
                            c.certificate_id.clone(),
                            d.service.clone(),
                            region.region_id.clone(),
                            String::new(),
                            error.to_owned(),
                        ]);
                    }
                    for res in &region.resources {
                        t.row([
                            c.certificate_id.clone(),
                            d.service.clone(),
                            region.region_id.clone(),
                            res.resource_name.clone(),
                            error.to_owned(),
                        ]);
                    }
                }
            }
        }
        t
    });
    Ok(0)
}

/// The profile's project id, which the v2 routes need.
fn project_of(ctx: &Ctx, what: &str) -> Result<String, Failure> {
    ctx.client.credentials().project_id.clone().ok_or_else(|| {
        Failure::Config(format!(
            "the profile names no project id, which {what} needs (openscm configure --project-id ...)"
        ))
    })
}

/// `cert history`: the v2 push history.
async fn history(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let project = project_of(ctx, "the push history")?;
    let r = ctx.client.v2_push_history(&project, id).await?;
    output::print(ctx.format, &r, || {
        let mut t = Table::new(&["TIME", "SERVICE", "REGION"]);
        for h in &r.push_history_list {
            t.row([
                output::when(&h.push_time),
                h.push_service.clone(),
                h.push_remote_project.clone().unwrap_or_default(),
            ]);
        }
        t
    });
    if r.push_history_list.is_empty() {
        eprintln!("openscm: {id} was never pushed");
    }
    Ok(0)
}

/// `cert notifications`.
async fn notifications(ctx: &Ctx, args: NotificationsArgs) -> Result<u8, Failure> {
    let on = args.switch == "on";
    let kinds = if args.kind.is_empty() {
        vec!["CERT_EXPIRING".to_owned(), "CERT_EXPIRED".to_owned()]
    } else {
        args.kind.clone()
    };
    let item = scm_proto::notices::NoticeBody {
        resource_id: Some(args.id.clone()),
        notice_type: Some(kinds.clone()),
    };
    ctx.client.set_notification(on, &[item]).await?;
    let doc = json!({"certificate_id": args.id, "notifications": args.switch, "kinds": kinds});
    output::print(ctx.format, &doc, || {
        output::fields(&[
            ("certificate", Some(args.id.clone())),
            ("notifications", Some(args.switch.clone())),
            ("kinds", Some(kinds.join(", "))),
        ])
    });
    Ok(0)
}

/// `cert deployments`: one table of targets, one of attempts.
async fn deployments(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let r = ctx.client.deployments(id).await?;
    if ctx.format == output::Format::Json {
        output::print_json(&r);
        return Ok(0);
    }
    {
        let mut t = output::Table::new(&[
            "TARGET",
            "KIND",
            "STATE",
            "VERSION",
            "SERVED",
            "DELIVERED",
            "ERROR",
        ]);
        for d in &r.deployments {
            t.row([
                d.target.clone(),
                d.kind.clone().unwrap_or_else(|| "(removed)".into()),
                d.state.clone(),
                d.version.to_string(),
                d.served_serial.clone().unwrap_or_default(),
                output::when_opt(d.delivered_at.as_deref()),
                d.last_error.clone().unwrap_or_default(),
            ]);
        }
        let mut a = output::Table::new(&[
            "TIME", "TARGET", "VERSION", "ATTEMPT", "OUTCOME", "VERIFIED", "DETAIL",
        ]);
        for x in &r.attempts {
            a.row([
                output::when(&x.time),
                x.target.clone(),
                x.version.map(|v| v.to_string()).unwrap_or_default(),
                x.attempt.to_string(),
                x.outcome.clone(),
                if x.verified { "yes" } else { "no" }.to_owned(),
                x.detail.clone(),
            ]);
        }
        print!("{}\n{}", t.render(), a.render());
    }
    Ok(0)
}

/// `cert revoke`: shows what is about to be revoked and asks (unless `--yes`), then revokes
/// through the v2 route (the one the API has for it), in the profile's project.
async fn revoke(ctx: &Ctx, args: RevokeArgs) -> Result<u8, Failure> {
    let project = project_of(ctx, "revoke")?;
    let c = ctx.client.show(&args.id).await?;
    if !args.yes {
        let what = format!(
            "Revoke {} ({}, {}, status {})? It cannot be undone. Type yes to revoke: ",
            c.id,
            c.name,
            c.domain.as_deref().unwrap_or("no domain"),
            c.status
        );
        if !confirmed(&what)? {
            return Err(Failure::Usage(format!(
                "{} was not revoked: not confirmed (answer yes, or pass --yes)",
                args.id
            )));
        }
    }
    let body = scm_proto::v2::RevokeBody {
        reason: Some(args.reason.clone()),
    };
    ctx.client.v2_revoke(&project, &args.id, &body).await?;
    let doc = json!({"certificate_id": args.id, "status": "REVOKED", "reason": args.reason});
    output::print(ctx.format, &doc, || {
        output::fields(&[
            ("revoked", Some(args.id.clone())),
            ("reason", Some(args.reason.clone())),
        ])
    });
    Ok(0)
}

/// Asks `question` on stderr and reads one line of stdin: `yes` or `y` (any case) confirms;
/// anything else, or no line at all, does not.
fn confirmed(question: &str) -> Result<bool, Failure> {
    use std::io::{BufRead, Write};
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "yes" | "y"
    ))
}

async fn list(ctx: &Ctx, args: ListArgs) -> Result<u8, Failure> {
    let client = &ctx.client;
    let (status, content) = (&args.status, &args.content);
    let page = page::collect(args.page.offset, args.page.wanted(), |limit, offset| {
        let query = ListQuery {
            limit: Some(i64::from(limit)),
            offset: Some(i64::from(offset)),
            status: status.clone(),
            content: content.clone(),
            ..ListQuery::default()
        };
        async move {
            let answer = client.list_certificates(&query).await?;
            Ok(Page {
                items: answer.certificates,
                total: answer.total_count,
            })
        }
    })
    .await?;
    output::print(ctx.format, &page.items, || {
        let mut t = Table::new(&["ID", "NAME", "DOMAIN", "STATUS", "TYPE", "EXPIRES"]);
        for c in &page.items {
            t.row([
                c.id.clone(),
                c.name.clone(),
                c.domain.clone().unwrap_or_default(),
                c.status.clone(),
                c.cert_type.clone().unwrap_or_default(),
                output::when_opt(c.expire_time.as_deref()),
            ]);
        }
        t
    });
    output::note_partial(
        page.items.len(),
        u64::from(args.page.offset),
        page.total,
        "certificates",
    );
    Ok(0)
}

async fn show(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let c = ctx.client.show(id).await?;
    let life = ctx.client.certificate_versions(id).await?;
    let mut doc = serde_json::to_value(&c).map_err(|e| Failure::Other(e.to_string()))?;
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "lifecycle".into(),
            serde_json::to_value(&life).map_err(|e| Failure::Other(e.to_string()))?,
        );
    }
    output::print(ctx.format, &doc, || {
        let mut t = output::fields(&[
            ("id", Some(c.id.clone())),
            ("name", Some(c.name.clone())),
            ("status", Some(c.status.clone())),
            ("order_id", c.order_id.clone()),
            ("brand", c.brand.clone()),
            ("type", c.cert_type.clone()),
            ("domain_type", c.domain_type.clone()),
            ("domain", c.domain.clone()),
            ("sans", c.sans.clone()),
            ("not_before", c.not_before.as_deref().map(output::when)),
            ("not_after", c.not_after.as_deref().map(output::when)),
            ("signature_algorithm", c.signature_algorithm.clone()),
            ("fingerprint", c.fingerprint.clone()),
            ("push_support", Some(c.push_support.clone())),
            ("revoke_reason", c.revoke_reason.clone()),
            (
                "auto_renew",
                Some(if life.auto_renew { "on" } else { "off" }.into()),
            ),
            ("renew_at", life.renew_at.as_deref().map(output::when)),
        ]);
        for a in &c.authentification {
            t.row([
                "prove".to_owned(),
                format!(
                    "{} {} {} (for {})",
                    a.record_type.as_deref().unwrap_or(""),
                    a.record_name.as_deref().unwrap_or(""),
                    a.record_value.as_deref().unwrap_or(""),
                    a.domain.as_deref().unwrap_or("")
                ),
            ]);
        }
        for v in &life.versions {
            t.row([
                format!(
                    "version {}{}",
                    v.version,
                    if v.current { " (current)" } else { "" }
                ),
                format!(
                    "{} serial {} valid {} .. {}",
                    v.reason,
                    v.serial_number,
                    v.not_before
                        .as_deref()
                        .map_or_else(|| "-".into(), output::when),
                    v.not_after
                        .as_deref()
                        .map_or_else(|| "-".into(), output::when)
                ),
            ]);
        }
        let skip = life.events.len().saturating_sub(10);
        for e in life.events.iter().skip(skip) {
            t.row([
                format!("event {}", output::when_opt(e.time.as_deref())),
                format!("{}: {} ({})", e.event, e.detail, e.actor),
            ]);
        }
        t
    });
    Ok(0)
}

async fn buy(ctx: &Ctx, args: BuyArgs) -> Result<u8, Failure> {
    let body = PurchaseBody {
        cert_brand: Some(args.brand.clone()),
        cert_type: Some(args.cert_type.clone()),
        domain_type: Some(args.domain_type.clone()),
        effective_time: Some(args.years),
        domain_numbers: Some(args.domains),
        order_number: Some(1),
        agree_privacy_protection: Some(true),
        ..PurchaseBody::default()
    };
    if args.count == 1 {
        let order = ctx.client.subscribe(&body).await?;
        output::print(ctx.format, &order, || {
            let mut t = Table::new(&["CERTIFICATE", "ORDER"]);
            for c in &order.cert {
                t.row([c.cert_id.clone(), order.order_id.clone()]);
            }
            t
        });
        return Ok(0);
    }
    let client = ctx.client.clone();
    let body = Arc::new(body);
    let items: Vec<usize> = (0..args.count as usize).collect();
    let outcome = run_bulk(
        items,
        args.concurrency as usize,
        ctx.format,
        "buying",
        move |_| {
            let client = client.clone();
            let body = body.clone();
            async move { Ok(client.subscribe(&body).await?) }
        },
    )
    .await;
    let bought: Vec<String> = outcome
        .done
        .iter()
        .flat_map(|(_, o)| o.cert.iter().map(|c| c.cert_id.clone()))
        .collect();
    let failed: Vec<serde_json::Value> = outcome
        .failed
        .iter()
        .map(|(i, e)| json!({"index": i, "error": e.to_json()}))
        .collect();
    let doc = json!({
        "requested": args.count,
        "done": bought,
        "failed": failed,
        "not_started": outcome.not_started.len(),
    });
    let code = outcome.exit_code();
    output::print(ctx.format, &doc, || {
        let mut t = Table::new(&["CERTIFICATE", "ORDER"]);
        for (_, o) in &outcome.done {
            for c in &o.cert {
                t.row([c.cert_id.clone(), o.order_id.clone()]);
            }
        }
        t
    });
    eprintln!(
        "openscm: bought {} of {} certificate(s); {} failed, {} not started",
        bought.len(),
        args.count,
        outcome.failed.len(),
        outcome.not_started.len()
    );
    for (i, e) in &outcome.failed {
        eprintln!("openscm: order #{}: {e}", i + 1);
    }
    Ok(code)
}

async fn apply(ctx: &Ctx, args: ApplyArgs) -> Result<u8, Failure> {
    let csr = args.csr.as_ref().map(read_text).transpose()?;
    let body = ApplicationBody {
        domain: Some(args.domain.clone()),
        sans: args.sans.clone(),
        key_algorithm: if csr.is_some() {
            None
        } else {
            Some(args.key_algorithm.clone())
        },
        csr,
        domain_method: Some(args.domain_method.clone()),
        applicant_name: Some(args.applicant_name.clone()),
        applicant_phone: Some(args.applicant_phone.clone()),
        applicant_email: Some(args.applicant_email.clone()),
        company_name: args.company_name.clone(),
        country: args.country.clone(),
        agree_privacy_protection: Some(true),
        ..ApplicationBody::default()
    };
    let info = ctx.client.apply(&args.id, &body).await?;
    // The built-in CA issues at once: show where the certificate is now.
    let shown = ctx.client.show(&args.id).await?;
    let doc = json!({
        "certificate_id": args.id,
        "request_info": info.request_info,
        "status": shown.status,
        "domain": shown.domain,
        "not_after": shown.not_after,
    });
    output::print(ctx.format, &doc, || {
        output::fields(&[
            ("certificate_id", Some(args.id.clone())),
            ("status", Some(shown.status.clone())),
            ("domain", shown.domain.clone()),
            ("not_after", shown.not_after.as_deref().map(output::when)),
            ("request_info", Some(info.request_info.clone())),
        ])
    });
    Ok(0)
}

// ---------------------------------------------------------------- export

/// A password, wiped on drop, never printed.
struct Password(zeroize::Zeroizing<String>);

fn pkcs12_password(args: &ExportArgs) -> Result<Password, Failure> {
    if let Some(file) = &args.password_file {
        let text = zeroize::Zeroizing::new(read_text(file)?);
        let first = text.lines().next().unwrap_or_default();
        return non_empty(first.to_owned(), "the password file's first line");
    }
    if let Some(var) = &args.password_env {
        let value = std::env::var(var)
            .map_err(|_| Failure::Usage(format!("--password-env: {var} is not set")))?;
        return non_empty(value, var);
    }
    if !stdin_is_terminal() {
        return Err(Failure::Usage(
            "--pkcs12 needs a password: --password-file, --password-env or a terminal".into(),
        ));
    }
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("PKCS#12 password: ")
            .map_err(|e| Failure::Usage(format!("cannot read the password: {e}")))?,
    );
    let again = zeroize::Zeroizing::new(
        rpassword::prompt_password("Again: ")
            .map_err(|e| Failure::Usage(format!("cannot read the password: {e}")))?,
    );
    if *first != *again {
        return Err(Failure::Usage("the passwords differ".into()));
    }
    non_empty(first.to_string(), "the password")
}

fn non_empty(value: String, what: &str) -> Result<Password, Failure> {
    if value.is_empty() {
        return Err(Failure::Usage(format!("{what} is empty")));
    }
    Ok(Password(zeroize::Zeroizing::new(value)))
}

/// A file name stem that stays inside the directory.
fn safe_stem(name: &str) -> Result<&str, Failure> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0')
    {
        return Err(Failure::Usage(format!(
            "--name {name:?} cannot be a file name"
        )));
    }
    Ok(name)
}

async fn export(ctx: &Ctx, args: ExportArgs) -> Result<u8, Failure> {
    let name = args.name.clone().unwrap_or_else(|| args.id.clone());
    let stem = safe_stem(&name)?.to_owned();
    // Ask for the password before the network call: a typo costs nothing then.
    let password = if args.pkcs12 {
        Some(pkcs12_password(&args)?)
    } else {
        None
    };
    let bundle = match args.version {
        Some(v) => ctx.client.export_version(&args.id, v).await?,
        None => ctx.client.export(&args.id).await?,
    };
    let write_err = |path: &Path, e: std::io::Error| {
        Failure::Other(format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(&args.dir).map_err(|e| write_err(&args.dir, e))?;

    let mut chain_pem = bundle.certificate.trim_end().to_owned();
    chain_pem.push('\n');
    if !bundle.certificate_chain.trim().is_empty() {
        chain_pem.push_str(bundle.certificate_chain.trim_end());
        chain_pem.push('\n');
    }
    let crt = args.dir.join(format!("{stem}.crt"));
    write_new_file(&crt, chain_pem.as_bytes(), 0o644).map_err(|e| write_err(&crt, e))?;

    let mut files = serde_json::Map::new();
    files.insert("crt".into(), json!(crt.display().to_string()));
    let key_pem = bundle
        .private_key
        .as_deref()
        .filter(|k| !k.trim().is_empty());
    if let Some(key_pem) = key_pem {
        let key = args.dir.join(format!("{stem}.key"));
        write_new_file(&key, key_pem.as_bytes(), 0o600).map_err(|e| write_err(&key, e))?;
        files.insert("key".into(), json!(key.display().to_string()));
    }
    if let Some(password) = password {
        let Some(key_pem) = key_pem else {
            return Err(Failure::Usage(
                "the server holds no private key for this certificate (its CSR came from \
                 elsewhere): no PKCS#12 can be made"
                    .into(),
            ));
        };
        let p12 = make_pkcs12(key_pem, &chain_pem, &name, &password)?;
        let path = args.dir.join(format!("{stem}.p12"));
        write_new_file(&path, &p12, 0o600).map_err(|e| write_err(&path, e))?;
        files.insert("p12".into(), json!(path.display().to_string()));
    }
    let doc = json!({"certificate_id": args.id, "files": files});
    output::print(ctx.format, &doc, || {
        let mut t = Table::new(&["FILE", "PATH"]);
        for (k, v) in &files {
            t.row([k.clone(), v.as_str().unwrap_or_default().to_owned()]);
        }
        t
    });
    Ok(0)
}

fn make_pkcs12(
    key_pem: &str,
    chain_pem: &str,
    name: &str,
    password: &Password,
) -> Result<Vec<u8>, Failure> {
    let key = scm_pki::PrivateKey::from_pem(key_pem)
        .map_err(|e| Failure::Other(format!("the exported key: {e}")))?;
    let mut ders = Vec::new();
    for block in scm_pki::pem_blocks(chain_pem, "CERTIFICATE") {
        let info = scm_pki::parse_certificate_pem(&block)
            .map_err(|e| Failure::Other(format!("the exported certificate: {e}")))?;
        ders.push(info.der);
    }
    let Some((leaf, chain)) = ders.split_first() else {
        return Err(Failure::Other("the export holds no certificate".into()));
    };
    scm_pki::pkcs12::write_pkcs12(
        &scm_pki::pkcs12::Pkcs12Input {
            pkcs8_key: key.pkcs8_der(),
            leaf_der: leaf,
            chain_der: chain,
            friendly_name: name,
        },
        &password.0,
    )
    .map_err(|e| Failure::Other(format!("PKCS#12: {e}")))
}

// ---------------------------------------------------------------- import

/// One certificate to import, as found on disk.
#[derive(Debug, Clone)]
struct ImportFile {
    /// The certificate file.
    path: PathBuf,
    /// The certificate's name.
    name: String,
}

/// The `*.crt` / `*.pem` files of a directory, sorted.
fn import_files(dir: &Path) -> Result<Vec<ImportFile>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", dir.display())))?
            .path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if path.is_file() && matches!(ext, "crt" | "pem") {
            let name = stem_of(&path);
            files.push(ImportFile { path, name });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("imported")
        .to_owned()
}

/// The request body of one file: the first certificate, the others as its chain, the key from
/// the same file or from NAME.key beside it.
fn import_body(file: &ImportFile) -> Result<ImportCertificateBody, Failure> {
    let text = read_text(&file.path)?;
    let certs = scm_pki::pem_blocks(&text, "CERTIFICATE");
    let Some((leaf, chain)) = certs.split_first() else {
        return Err(Failure::Usage(format!(
            "{}: no CERTIFICATE block",
            file.path.display()
        )));
    };
    let key = match find_key(&text) {
        Some(key) => key,
        None => {
            let key_path = file.path.with_extension("key");
            let key_text = std::fs::read_to_string(&key_path).map_err(|e| {
                Failure::Usage(format!(
                    "{}: no private key in the file, and {}: {e}",
                    file.path.display(),
                    key_path.display()
                ))
            })?;
            find_key(&key_text).ok_or_else(|| {
                Failure::Usage(format!("{}: no private key block", key_path.display()))
            })?
        }
    };
    Ok(ImportCertificateBody {
        name: Some(file.name.clone()),
        certificate: Some(leaf.clone()),
        certificate_chain: if chain.is_empty() {
            None
        } else {
            Some(chain.concat())
        },
        private_key: Some(key),
        ..ImportCertificateBody::default()
    })
}

/// The first private key block of a PEM text, verbatim.
fn find_key(text: &str) -> Option<String> {
    ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]
        .iter()
        .find_map(|tag| scm_pki::pem_blocks(text, tag).into_iter().next())
}

async fn import(ctx: &Ctx, args: ImportArgs) -> Result<u8, Failure> {
    if !args.path.is_dir() {
        let name = args.name.clone().unwrap_or_else(|| stem_of(&args.path));
        let body = import_body(&ImportFile {
            path: args.path.clone(),
            name,
        })?;
        let done = ctx.client.import_certificate(&body).await?;
        let doc =
            json!({"file": args.path.display().to_string(), "certificate_id": done.certificate_id});
        output::print(ctx.format, &doc, || {
            output::fields(&[
                ("file", Some(args.path.display().to_string())),
                ("certificate_id", Some(done.certificate_id.clone())),
            ])
        });
        return Ok(0);
    }
    if args.name.is_some() {
        return Err(Failure::Usage(
            "--name is for a single file; a directory's certificates are named after their files"
                .into(),
        ));
    }
    let files = import_files(&args.path)?;
    if files.is_empty() {
        return Err(Failure::Usage(format!(
            "{}: no *.crt or *.pem file",
            args.path.display()
        )));
    }
    let client = ctx.client.clone();
    let outcome = run_bulk(
        files.clone(),
        args.concurrency as usize,
        ctx.format,
        "importing",
        move |file: ImportFile| {
            let client = client.clone();
            async move {
                let body = import_body(&file)?;
                Ok(client.import_certificate(&body).await?)
            }
        },
    )
    .await;
    let path_of = |i: &usize| {
        files
            .get(*i)
            .map(|f| f.path.display().to_string())
            .unwrap_or_default()
    };
    let done: Vec<serde_json::Value> = outcome
        .done
        .iter()
        .map(|(i, r)| json!({"file": path_of(i), "certificate_id": r.certificate_id}))
        .collect();
    let failed: Vec<serde_json::Value> = outcome
        .failed
        .iter()
        .map(|(i, e)| json!({"file": path_of(i), "error": e.to_json()}))
        .collect();
    let not_done: Vec<String> = outcome.not_started.iter().map(path_of).collect();
    let doc =
        json!({"requested": files.len(), "done": done, "failed": failed, "not_done": not_done});
    output::print(ctx.format, &doc, || {
        let mut t = Table::new(&["FILE", "CERTIFICATE"]);
        for (i, r) in &outcome.done {
            t.row([path_of(i), r.certificate_id.clone()]);
        }
        t
    });
    eprintln!(
        "openscm: imported {} of {} file(s); {} failed, {} not done",
        outcome.done.len(),
        files.len(),
        outcome.failed.len(),
        outcome.not_started.len()
    );
    for (i, e) in &outcome.failed {
        eprintln!("openscm: {}: {e}", path_of(i));
    }
    for f in &not_done {
        eprintln!("openscm: not done: {f}");
    }
    Ok(outcome.exit_code())
}

// ---------------------------------------------------------------- delete

async fn delete(ctx: &Ctx, ids: Vec<String>) -> Result<u8, Failure> {
    remove_each(ctx.format, "deleted", ids, |id| async move {
        ctx.client.delete_certificate(&id).await
    })
    .await
}

/// Removes `ids` one after the other (`cert delete`, `cert unsubscribe`, `csr delete`; `done`
/// names what was done: `deleted`, `unsubscribed`). When one fails after others were removed,
/// prints what was removed, the failure and what was not done, and answers [`exit::PARTIAL`]; a
/// failure of the first is the plain error.
pub async fn remove_each<F, Fut>(
    format: Format,
    done: &str,
    ids: Vec<String>,
    delete: F,
) -> Result<u8, Failure>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), scm_client::ClientError>>,
{
    let mut deleted: Vec<String> = Vec::new();
    let header = done.to_ascii_uppercase();
    let table = |deleted: &[String]| {
        let mut t = Table::new(&[header.as_str()]);
        for d in deleted {
            t.row([d.clone()]);
        }
        t
    };
    for (n, id) in ids.iter().enumerate() {
        if let Err(e) = delete(id.clone()).await {
            let failure = Failure::from(e);
            if deleted.is_empty() {
                return Err(failure);
            }
            let not_done = ids.get(n + 1..).unwrap_or_default();
            let doc = json!({done: deleted, "failed": [{"id": id, "error": failure.to_json()}], "not_done": not_done});
            output::print(format, &doc, || table(&deleted));
            eprintln!("openscm: {id}: {failure}; not done: {}", not_done.join(" "));
            return Ok(exit::PARTIAL);
        }
        deleted.push(id.clone());
    }
    let doc = json!({done: deleted});
    output::print(format, &doc, || table(&deleted));
    Ok(0)
}

// ---------------------------------------------------------------- bulk

/// What a bulk run did, by item index.
pub struct BulkOutcome<R> {
    /// Items done, with their answers, in index order.
    pub done: Vec<(usize, R)>,
    /// Items that failed.
    pub failed: Vec<(usize, Failure)>,
    /// Items never started (the run stopped at the first failure).
    pub not_started: Vec<usize>,
}

impl<R> BulkOutcome<R> {
    /// 0 when everything was done, else [`exit::PARTIAL`].
    pub fn exit_code(&self) -> u8 {
        if self.failed.is_empty() && self.not_started.is_empty() {
            0
        } else {
            exit::PARTIAL
        }
    }
}

/// Runs `work` on every item, at most `concurrency` at once, with a progress bar on a terminal
/// (not with `--output json`). After the first failure no further item is started (a quota or
/// an auth problem would fail them all); those in flight finish.
pub async fn run_bulk<T, R, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    format: Format,
    label: &'static str,
    work: F,
) -> BulkOutcome<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<R, Failure>> + Send + 'static,
{
    let total = items.len();
    let bar = if format == Format::Table && stderr_is_terminal() {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut set = tokio::task::JoinSet::new();
    let mut index_of = HashMap::new();
    let mut pending = items.into_iter().enumerate();
    let mut outcome = BulkOutcome {
        done: Vec::new(),
        failed: Vec::new(),
        not_started: Vec::new(),
    };
    let mut stopped = false;
    loop {
        while !stopped && set.len() < concurrency.max(1) {
            let Some((i, item)) = pending.next() else {
                break;
            };
            let fut = work(item);
            let handle = set.spawn(async move { (i, fut.await) });
            index_of.insert(handle.id(), i);
        }
        let Some(joined) = set.join_next_with_id().await else {
            break;
        };
        bar.inc(1);
        match joined {
            Ok((id, (i, result))) => {
                index_of.remove(&id);
                match result {
                    Ok(r) => outcome.done.push((i, r)),
                    Err(e) => {
                        stopped = true;
                        outcome.failed.push((i, e));
                    }
                }
            }
            Err(e) => {
                stopped = true;
                let i = index_of.remove(&e.id()).unwrap_or(usize::MAX);
                outcome
                    .failed
                    .push((i, Failure::Other(format!("the task ended: {e}"))));
            }
        }
    }
    outcome.not_started = pending.map(|(i, _)| i).collect();
    bar.finish_and_clear();
    outcome.done.sort_by_key(|(i, _)| *i);
    outcome.failed.sort_by_key(|(i, _)| *i);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bulk_run_stops_at_the_first_failure_and_says_what_was_not_started() {
        let outcome = run_bulk(
            (0..20).collect(),
            1,
            Format::Json,
            "t",
            |i: usize| async move {
                if i == 5 {
                    Err(Failure::Other("quota".into()))
                } else {
                    Ok(i * 10)
                }
            },
        )
        .await;
        assert_eq!(
            outcome.done.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.not_started, (6..20).collect::<Vec<_>>());
        assert_eq!(outcome.exit_code(), exit::PARTIAL);

        let all = run_bulk(
            (0..50).collect(),
            8,
            Format::Json,
            "t",
            |i: usize| async move { Ok::<_, Failure>(i) },
        )
        .await;
        assert_eq!(all.done.len(), 50);
        assert_eq!(all.exit_code(), 0);
    }

    #[tokio::test]
    async fn at_most_concurrency_items_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (r, p) = (running.clone(), peak.clone());
        let outcome = run_bulk((0..40).collect(), 3, Format::Json, "t", move |_: usize| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Failure>(())
            }
        })
        .await;
        assert_eq!(outcome.done.len(), 40);
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn import_layout_takes_the_key_from_the_file_or_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let chain = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        std::fs::write(dir.path().join("a.pem"), format!("{cert}{chain}{key}")).unwrap();
        std::fs::write(dir.path().join("b.crt"), cert).unwrap();
        std::fs::write(dir.path().join("b.key"), key).unwrap();
        std::fs::write(dir.path().join("c.crt"), cert).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let files = import_files(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a = import_body(&files[0]).unwrap();
        assert_eq!(a.name.as_deref(), Some("a"));
        assert!(a.certificate.unwrap().contains("MIIB"));
        assert!(a.certificate_chain.unwrap().contains("MIIC"));
        assert!(a.private_key.unwrap().contains("MIIE"));
        let b = import_body(&files[1]).unwrap();
        assert_eq!(b.certificate_chain, None);
        assert!(b.private_key.unwrap().contains("MIIE"));
        let err = import_body(&files[2]).unwrap_err();
        assert!(err.to_string().contains("c.key"), "{err}");
    }

    #[test]
    fn names_stay_in_the_directory() {
        assert!(safe_stem("www.shop.test").is_ok());
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(safe_stem(bad).is_err(), "{bad}");
        }
    }
}
