//! `openscm`: the OpenSCM server and its admin CLI in one binary.

mod admin;
mod config;
mod server;

use clap::{Parser, Subcommand};

// See the workspace Cargo.toml for why.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OpenSCM: a self-hostable SSL/TLS certificate manager that speaks the Huawei Cloud SCM API.
///
/// `openscm server` runs the API (zero config: SQLite in ./openscm-data, admin credentials written
/// to DATA_DIR/credentials.json on first start). `openscm admin` manages accounts, projects and
/// credentials directly in the store.
#[derive(Debug, Parser)]
#[command(name = "openscm", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    common: config::CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (bootstraps an empty store on first start).
    Server(config::ServerArgs),
    /// Manage accounts, projects, credentials and issuance policies.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Print the OpenAPI 3.1 description of the API (what GET /openapi.json answers; committed
    /// as docs/openapi.json: `openscm openapi > docs/openapi.json`).
    Openapi,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(&cli.common, &args).await,
            Command::Admin { command } => admin::run(&cli.common, command).await,
            Command::Openapi => {
                use std::io::Write;
                std::io::stdout()
                    .write_all(scm_api::openapi::render().as_bytes())
                    .map_err(anyhow::Error::from)
            }
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openscm: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
