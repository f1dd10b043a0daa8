//! `openscm`: the OpenSCM server, its admin CLI and a client CLI in one binary.

mod admin;
mod cli;
mod config;
mod server;
mod store_guard;

use clap::{CommandFactory, Parser, Subcommand};

// See the workspace Cargo.toml for why.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OpenSCM: a self-hostable SSL/TLS certificate manager that speaks the Huawei Cloud SCM API.
///
/// `openscm server` runs the API (zero config: SQLite in ./openscm-data, admin credentials written
/// to DATA_DIR/credentials.json on first start). `openscm admin` manages accounts, projects and
/// credentials directly in the store. `openscm configure`, `cert`, `csr` and `tag` are a client
/// of a running server (any server speaking the API), with credentials from a profile file.
#[derive(Debug, Parser)]
#[command(name = "openscm", version, about, long_about, after_help = cli::ROOT_EXAMPLES)]
struct Cli {
    #[command(flatten)]
    legacy: config::LegacyStoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (bootstraps an empty store on first start).
    Server {
        #[command(flatten)]
        store: config::CommonArgs,
        #[command(flatten)]
        args: config::ServerArgs,
    },
    /// Manage accounts, projects, credentials and issuance policies.
    Admin {
        // Before the store options, so that it is listed under Options, not under their heading.
        #[command(flatten)]
        out: cli::output::OutputArg,
        #[command(flatten)]
        store: config::CommonArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Print the OpenAPI 3.1 description of the API (what GET /openapi.json answers; committed
    /// as docs/openapi.json: `openscm openapi > docs/openapi.json`).
    Openapi,
    /// Write a client profile (endpoint, access key, secret key, project) to the profile file.
    Configure(cli::ConfigureArgs),
    /// Certificates: list, show, buy, apply, export, import, push, renew, revoke, delete, ...
    Cert(cli::CertArgs),
    /// Certificate signing requests: create, list, show, update, delete, key, upload.
    Csr(cli::CsrArgs),
    /// Tags of certificates: add, list, delete, all, find.
    Tag(cli::TagArgs),
    /// The account's own CA: root.
    Ca(cli::CaArgs),
    /// Print a shell completion script: `openscm completions bash > /etc/bash_completion.d/openscm`.
    #[command(after_help = "Examples:
  mkdir -p ~/.local/share/bash-completion/completions
  openscm completions bash > ~/.local/share/bash-completion/completions/openscm
  mkdir -p ~/.zfunc && openscm completions zsh > ~/.zfunc/_openscm   # fpath+=(~/.zfunc) in .zshrc
  mkdir -p ~/.config/fish/completions
  openscm completions fish > ~/.config/fish/completions/openscm.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let legacy = cli.legacy;
    let store = |store: config::CommonArgs| store.or_legacy(legacy.clone());
    let client_command = !matches!(
        cli.command,
        Command::Server { .. } | Command::Admin { .. } | Command::Openapi
    );
    if client_command && !legacy.is_empty() {
        eprintln!(
            "openscm: the store options (--data-dir, --config, --database-url, ...) belong to \
             `openscm server` and `openscm admin`"
        );
        return std::process::ExitCode::from(cli::exit::USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("openscm: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Server { store: s, args } => server::run(&store(s), &args).await,
            Command::Admin {
                store: s,
                out,
                command,
            } => {
                let outcome = admin::run(&store(s), out.output, command).await;
                if let Err(e) = &outcome
                    && out.output == cli::output::Format::Json
                {
                    cli::output::print_json(
                        &serde_json::json!({"error": {"kind": "admin", "message": format!("{e:#}")}}),
                    );
                }
                outcome
            }
            Command::Openapi => {
                use std::io::Write;
                std::io::stdout()
                    .write_all(scm_api::openapi::render().as_bytes())
                    .map_err(anyhow::Error::from)
            }
            Command::Completions { shell } => {
                use std::io::Write;
                // Into a buffer first: clap_complete panics on a failed write (a closed pipe).
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "openscm", &mut script);
                std::io::stdout()
                    .write_all(&script)
                    .map_err(anyhow::Error::from)
            }
            Command::Configure(args) => return cli::configure(args).await,
            Command::Cert(args) => return cli::cert(args).await,
            Command::Csr(args) => return cli::csr(args).await,
            Command::Tag(args) => return cli::tag(args).await,
            Command::Ca(args) => return cli::ca(args).await,
        }
        .map_or_else(
            |e| {
                eprintln!("openscm: {e:#}");
                std::process::ExitCode::FAILURE
            },
            |()| std::process::ExitCode::SUCCESS,
        )
    })
}
