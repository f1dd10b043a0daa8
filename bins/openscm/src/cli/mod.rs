//! The client CLI: `openscm configure`, `cert`, `csr`, `tag`, `ca`, talking to a server through
//! `scm-client` with the credentials of a profile (see [`profile`]).
//!
//! What every command prints (these and `openscm admin`): see [`output`] — a table by default,
//! one JSON document with `-o json`, notes on stderr, times readable UTC in tables and RFC 3339
//! in JSON. Lists take `--limit` (from 1), `--offset` and `--all`, fetched in the API's pages
//! (see [`page`]).
//!
//! Every example of every `--help` runs as written in tests/e2e/test_cli.py
//! (`test_every_help_example_runs`), which says how their placeholders are replaced.
//!
//! Exit codes (see [`exit`]): 0 done; 1 the API refused (its SCM code and message are printed),
//! or another failure (an output file cannot be written);
//! 2 usage error; 3 authentication or configuration problem (no profile, bad credentials: HTTP
//! 401); 4 network or TLS problem (endpoint unreachable, certificate not trusted); 5 a bulk
//! command did part of its work (the summary says what was done and what was not); 6 a push
//! failed for now and is retried in the background. A bad id is the API's refusal (1); a bad
//! option value (`--limit 0`, `--service FTP`, `on|off`) is a usage error (2), refused before any
//! request.

mod ca;
mod cert;
mod configure;
mod csr;
pub(crate) mod output;
mod page;
mod profile;
mod tag;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use scm_client::{Client, ClientError};

pub use configure::{ConfigureArgs, run as configure};
use output::Format;

/// The exit codes of the client commands.
pub mod exit {
    /// The API refused (HTTP 4xx/5xx other than 401), or another failure.
    pub const API: u8 = 1;
    /// Usage error (clap's own code).
    pub const USAGE: u8 = 2;
    /// Authentication or configuration.
    pub const CONFIG: u8 = 3;
    /// Network or TLS.
    pub const NETWORK: u8 = 4;
    /// A bulk command did part of its work.
    pub const PARTIAL: u8 = 5;
    /// A push failed for now and is retried in the background (the message says when): not
    /// done, not given up.
    pub const PENDING: u8 = 6;
}

/// Examples for `openscm --help`.
pub const ROOT_EXAMPLES: &str = "\
Examples:
  openscm server                                  # run the API, data in ./openscm-data
  openscm configure --from-credentials openscm-data/credentials.json
  openscm cert buy                                # prints the new certificate's id
  openscm cert apply scs1700000000000 --domain www.shop.test
  openscm cert list
  P12_PASS=... openscm cert export scs1700000000000 --dir ./out --pkcs12 --password-env P12_PASS
  openscm ca root > root.pem                      # the root the account's certificates chain to

Every command prints a table, or one JSON document with -o json; notes go to stderr.
Exit codes of the client commands: 0 ok, 1 API refused, 2 usage, 3 auth/config, 4 network/TLS,
5 bulk command partly done, 6 push failed for now (retried in the background).";

/// Why a client command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or input files.
    Usage(String),
    /// No or bad profile, credentials refused.
    Config(String),
    /// The API refused.
    Api {
        /// HTTP status.
        status: u16,
        /// `error_code`.
        code: String,
        /// `error_msg`.
        message: String,
        /// `X-Request-Id`.
        request_id: Option<String>,
    },
    /// Could not reach the server.
    Network(String),
    /// Anything else (a local file could not be written, an answer not understood).
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(m) | Self::Config(m) | Self::Network(m) | Self::Other(m) => f.write_str(m),
            Self::Api {
                status,
                code,
                message,
                request_id,
            } => {
                write!(f, "{code}: {message} (HTTP {status}")?;
                if let Some(id) = request_id {
                    write!(f, ", request id {id}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl Failure {
    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Config(_) => exit::CONFIG,
            Self::Api { status: 401, .. } => exit::CONFIG,
            Self::Api { code, message, .. } if is_pending(code, message) => exit::PENDING,
            Self::Api { .. } | Self::Other(_) => exit::API,
            Self::Network(_) => exit::NETWORK,
        }
    }

    /// The failure as JSON, for `--output json` and bulk summaries.
    pub fn to_json(&self) -> serde_json::Value {
        let kind = match self {
            Self::Usage(_) => "usage",
            Self::Config(_) => "config",
            Self::Api { status: 401, .. } => "auth",
            Self::Api { code, message, .. } if is_pending(code, message) => "pending",
            Self::Api { .. } => "api",
            Self::Network(_) => "network",
            Self::Other(_) => "other",
        };
        match self {
            Self::Api {
                status,
                code,
                message,
                request_id,
            } => serde_json::json!({
                "kind": kind, "status": status, "code": code, "message": message,
                "request_id": request_id,
            }),
            other => serde_json::json!({"kind": kind, "message": other.to_string()}),
        }
    }
}

/// Whether an API error is a push that failed for now and will be retried (`SCM.0028` whose
/// message starts `in progress:` and names the next attempt).
fn is_pending(code: &str, message: &str) -> bool {
    code == "SCM.0028" && message.contains("in progress:")
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api {
                status,
                code,
                message,
                request_id,
            } => Self::Api {
                status,
                code,
                message,
                request_id,
            },
            ClientError::Status {
                status,
                ref request_id,
                ..
            } => Self::Api {
                status,
                code: format!("HTTP.{status}"),
                message: e.to_string(),
                request_id: request_id.clone(),
            },
            ClientError::Transport(_) => Self::Network(e.to_string()),
            ClientError::Config(_) | ClientError::Credentials(_) => Self::Config(e.to_string()),
            other => Self::Other(other.to_string()),
        }
    }
}

/// Options of every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Profile of the profile file to use [default: default].
    #[arg(long, env = "OPENSCM_PROFILE", global = true)]
    pub profile: Option<String>,
    #[command(flatten)]
    out: output::OutputArg,
    /// Endpoint, replacing the profile's: http(s)://host[:port].
    #[arg(long, env = "OPENSCM_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
}

/// What a command runs with.
pub struct Ctx {
    /// The client.
    pub client: Client,
    /// `--output`.
    pub format: Format,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl ClientArgs {
    /// The client of the resolved profile.
    fn connect(&self) -> Result<Ctx, Failure> {
        let path = profile::file_path(&env_var)?;
        let file = profile::ProfileFile::load(&path)?;
        let resolved = profile::resolve(
            &file,
            self.profile.as_deref(),
            self.endpoint.as_deref(),
            &env_var,
        )?;
        let mut builder = Client::builder(&resolved.endpoint, resolved.credentials)
            // Long enough for an RSA key generation on a busy server; a dead one fails earlier
            // (connection refused).
            .timeout(std::time::Duration::from_secs(120));
        if let Some(ca) = &resolved.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                Failure::Config(format!("cannot read the CA file {}: {e}", ca.display()))
            })?;
            builder = builder.root_ca_pem(pem);
        }
        Ok(Ctx {
            client: builder.build()?,
            format: self.out.output,
        })
    }
}

/// Runs a command body and turns its outcome into an exit code, printing a failure (and, with
/// `--output json`, a JSON error document on stdout).
async fn finish<F>(format: Format, body: F) -> ExitCode
where
    F: std::future::Future<Output = Result<u8, Failure>>,
{
    match body.await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            if format == Format::Json {
                output::print_json(&serde_json::json!({ "error": failure.to_json() }));
            }
            let prefix = match failure {
                Failure::Api { .. } => "openscm: refused: ",
                _ => "openscm: ",
            };
            eprintln!("{prefix}{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

// ---------------------------------------------------------------- cert

/// `openscm cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: cert::CertCommand,
}

/// Runs `openscm cert ...`.
pub async fn cert(args: CertArgs) -> ExitCode {
    let format = args.client.out.output;
    finish(format, async move {
        let ctx = args.client.connect()?;
        cert::run(&ctx, args.command).await
    })
    .await
}

// ---------------------------------------------------------------- csr

/// `openscm csr`.
#[derive(Debug, Args)]
pub struct CsrArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: csr::CsrCommand,
}

/// Runs `openscm csr ...`.
pub async fn csr(args: CsrArgs) -> ExitCode {
    let format = args.client.out.output;
    finish(format, async move {
        let ctx = args.client.connect()?;
        csr::run(&ctx, args.command).await
    })
    .await
}

// ---------------------------------------------------------------- tag

/// `openscm tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: tag::TagCommand,
}

/// Runs `openscm tag ...`.
pub async fn tag(args: TagArgs) -> ExitCode {
    let format = args.client.out.output;
    finish(format, async move {
        let ctx = args.client.connect()?;
        tag::run(&ctx, args.command).await
    })
    .await
}

/// `openscm ca ...`.
#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ca::CaCommand,
}

/// Runs `openscm ca ...`.
pub async fn ca(args: CaArgs) -> ExitCode {
    let format = args.client.out.output;
    finish(format, async move {
        let ctx = args.client.connect()?;
        ca::run(&ctx, args.command).await
    })
    .await
}

// ---------------------------------------------------------------- shared helpers

/// Reads a whole text file given on the command line.
fn read_text(path: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

/// Whether stdin is a terminal (then we may prompt).
fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Whether stderr is a terminal (then a progress bar may be drawn).
fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_their_exit_codes() {
        let api = |status| Failure::Api {
            status,
            code: "SCM.0001".into(),
            message: "no".into(),
            request_id: Some("r1".into()),
        };
        assert_eq!(api(400).exit_code(), exit::API);
        assert_eq!(api(404).exit_code(), exit::API);
        assert_eq!(api(401).exit_code(), exit::CONFIG);
        assert_eq!(Failure::Config("x".into()).exit_code(), exit::CONFIG);
        assert_eq!(Failure::Network("x".into()).exit_code(), exit::NETWORK);
        assert_eq!(Failure::Usage("x".into()).exit_code(), exit::USAGE);
        assert_eq!(
            api(400).to_string(),
            "SCM.0001: no (HTTP 400, request id r1)"
        );
        assert_eq!(api(400).to_json()["code"], "SCM.0001");
        assert_eq!(api(401).to_json()["kind"], "auth");
    }
}
