//! `openscm csr ...`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use scm_proto::csr::{CreateCsrBody, CsrResponse, UpdateCsrBody, UploadCsrBody};
use serde_json::json;

use super::output::{self, Table};
use super::page::{self, Page, PageArgs};
use super::profile::write_new_file;
use super::{Ctx, Failure, read_text};

const EXAMPLES: &str = "\
Examples:
  openscm csr create --name shop --domain www.shop.test --sans shop.test --algorithm EC_P256
  openscm csr list
  openscm csr list --all -o json | jq -r '.[].id'
  openscm csr show CSR_ID
  openscm csr update CSR_ID --name shop-2026
  openscm csr key CSR_ID --out shop.key          # written with mode 0600
  openssl req -new -newkey rsa:2048 -nodes -keyout ext.key -out ext.csr -subj /CN=ext.shop.test
  openscm csr upload --name ext --csr ext.csr --key ext.key
  openscm csr delete CSR_ID";

/// `openscm csr` subcommands.
#[derive(Debug, Subcommand)]
pub enum CsrCommand {
    /// Make a key and a CSR for it on the server.
    #[command(after_help = EXAMPLES)]
    Create(CreateArgs),
    /// List CSRs.
    #[command(after_help = EXAMPLES)]
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only CSRs whose name contains this.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one CSR with its PEM.
    #[command(after_help = EXAMPLES)]
    Show {
        /// CSR id.
        id: String,
    },
    /// Rename a CSR.
    #[command(after_help = EXAMPLES)]
    Update {
        /// CSR id.
        id: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Delete CSRs (and their keys).
    #[command(after_help = EXAMPLES)]
    Delete {
        /// CSR ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// The private key of a CSR (PEM), to stdout or a file.
    #[command(after_help = EXAMPLES)]
    Key {
        /// CSR id.
        id: String,
        /// Write it to this file (mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Store a CSR made elsewhere, with its key or without.
    #[command(after_help = EXAMPLES)]
    Upload {
        /// Name.
        #[arg(long)]
        name: String,
        /// The CSR file (PEM).
        #[arg(long)]
        csr: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

/// `csr create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name.
    #[arg(long)]
    name: String,
    /// Primary domain.
    #[arg(long)]
    domain: String,
    /// Further domains, `;`-separated.
    #[arg(long)]
    sans: Option<String>,
    /// Key algorithm: EC_P256, EC_P384, RSA_2048, RSA_3072, RSA_4096.
    #[arg(long, default_value = "EC_P256")]
    algorithm: String,
    /// PERSONAL or ENTERPRISE (which needs country, province, city and company).
    #[arg(long, default_value = "PERSONAL")]
    usage: String,
    /// Country (C).
    #[arg(long)]
    country: Option<String>,
    /// Province (ST).
    #[arg(long)]
    province: Option<String>,
    /// City (L).
    #[arg(long)]
    city: Option<String>,
    /// Company (O).
    #[arg(long)]
    company: Option<String>,
}

fn csr_table(items: &[CsrResponse]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "DOMAIN", "SANS", "ALGORITHM", "CREATED"]);
    for c in items {
        t.row([
            c.id.clone(),
            c.name.clone(),
            c.domain_name.clone(),
            c.sans.clone(),
            c.private_key_algo.clone().unwrap_or_default(),
            output::when_ms(c.create_time),
        ]);
    }
    t
}

/// Runs a `csr` subcommand.
pub async fn run(ctx: &Ctx, command: CsrCommand) -> Result<u8, Failure> {
    let client = &ctx.client;
    match command {
        CsrCommand::Create(a) => {
            let body = CreateCsrBody {
                name: Some(a.name),
                domain_name: Some(a.domain),
                sans: a.sans,
                private_key_algo: Some(a.algorithm),
                usage: Some(a.usage),
                company_country: a.country,
                company_province: a.province,
                company_city: a.city,
                company_name: a.company,
            };
            let made = client.create_csr(&body).await?;
            output::print(ctx.format, &made, || {
                output::fields(&[
                    ("id", Some(made.id.clone())),
                    ("name", Some(made.name.clone())),
                    ("domain", Some(made.domain_name.clone())),
                    ("sans", Some(made.sans.clone())),
                    ("algorithm", Some(made.private_key_algo.clone())),
                ])
            });
        }
        CsrCommand::List { page, name } => {
            let name = &name;
            let found = page::collect(page.offset, page.wanted(), |limit, offset| async move {
                let (limit, offset) = (limit.to_string(), offset.to_string());
                let mut query = vec![("limit", limit.as_str()), ("offset", offset.as_str())];
                if let Some(v) = name {
                    query.push(("name", v.as_str()));
                }
                let answer = client.list_csr(&query).await?;
                Ok(Page {
                    items: answer.csr_list,
                    total: answer.total,
                })
            })
            .await?;
            output::print(ctx.format, &found.items, || csr_table(&found.items));
            output::note_partial(
                found.items.len(),
                u64::from(page.offset),
                found.total,
                "CSRs",
            );
        }
        CsrCommand::Show { id } => {
            let c = client.show_csr(&id).await?;
            output::print(ctx.format, &c, || csr_table(std::slice::from_ref(&c)));
            // The PEM below the table, where a column would be too wide for it.
            if ctx.format == output::Format::Table {
                print!("\n{}", c.csr);
            }
        }
        CsrCommand::Update { id, name } => {
            let c = client
                .update_csr(&id, &UpdateCsrBody { name: Some(name) })
                .await?;
            output::print(ctx.format, &c, || csr_table(std::slice::from_ref(&c)));
        }
        CsrCommand::Delete { ids } => {
            return super::cert::remove_each(ctx.format, "deleted", ids, |id| async move {
                client.delete_csr(&id).await
            })
            .await;
        }
        CsrCommand::Key { id, out } => {
            let key = client.show_csr_private_key(&id).await?;
            let pem = zeroize::Zeroizing::new(key.private_key);
            match out {
                Some(path) => {
                    write_new_file(&path, pem.as_bytes(), 0o600).map_err(|e| {
                        Failure::Other(format!("cannot write {}: {e}", path.display()))
                    })?;
                    output::print(
                        ctx.format,
                        &json!({"id": id, "file": path.display().to_string()}),
                        || output::fields(&[("key", Some(path.display().to_string()))]),
                    );
                }
                None => match ctx.format {
                    output::Format::Json => {
                        output::print_json(&json!({"id": id, "private_key": pem.as_str()}));
                    }
                    output::Format::Table => print!("{}", pem.as_str()),
                },
            }
        }
        CsrCommand::Upload { name, csr, key } => {
            let body = UploadCsrBody {
                name: Some(name),
                csr: Some(read_text(&csr)?),
                private_key: key.as_ref().map(read_text).transpose()?,
            };
            let done = client.upload_csr(&body).await?;
            output::print(ctx.format, &done, || {
                output::fields(&[
                    ("id", Some(done.id.clone())),
                    ("name", Some(done.name.clone())),
                ])
            });
        }
    }
    Ok(0)
}
