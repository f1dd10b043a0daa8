//! `openscm ca ...`: the account's own CA.

use clap::Subcommand;

use super::output::{self, Format};
use super::{Ctx, Failure};

const EXAMPLES: &str = "\
Examples:
  openscm ca root > root.pem              # the root the account's certificates chain to
  openscm ca root --all > roots.pem       # with the roots of retired CAs (older certificates)
  openscm ca root -o json                 # {\"ca_id\", \"root_certificate\", ...}";

/// `openscm ca` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print the root certificate of the account's CA (PEM), for its clients to trust: every
    /// certificate issued to the account chains to it, and no other account's does.
    #[command(after_help = EXAMPLES)]
    Root {
        /// Also print the roots of retired CAs that issued the account's older certificates.
        #[arg(long)]
        all: bool,
    },
}

/// Runs a `ca` subcommand.
pub async fn run(ctx: &Ctx, command: CaCommand) -> Result<u8, Failure> {
    match command {
        CaCommand::Root { all } => {
            let roots = ctx.client.ca_root().await?;
            if ctx.format == Format::Json {
                output::print_json(&roots);
                return Ok(0);
            }
            let mut pem = roots.root_certificate.clone();
            if all {
                for retired in &roots.retired_root_certificates {
                    if !pem.ends_with('\n') {
                        pem.push('\n');
                    }
                    pem.push_str(retired);
                }
            }
            print!("{pem}");
            if !pem.ends_with('\n') {
                println!();
            }
            Ok(0)
        }
    }
}
