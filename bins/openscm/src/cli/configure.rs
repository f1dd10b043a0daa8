//! `openscm configure`: writes one profile of the profile file.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use scm_client::{CredentialsFile, SecretKey};

use super::output::{self, Format};
use super::profile::{self, Profile, ProfileFile};
use super::{Failure, env_var, finish, stdin_is_terminal};

const EXAMPLES: &str = "\
Examples:
  openscm configure --from-credentials openscm-data/credentials.json   # written by the server
  openscm configure                                   # on a terminal: asks for each setting
  jq -r .secret_key openscm-data/credentials.json | openscm configure --profile ci \\
      --endpoint http://127.0.0.1:8080 \\
      --access-key \"$(jq -r .access_key openscm-data/credentials.json)\"
The secret key is read without echo from the terminal, or as one line from stdin when stdin is
not a terminal. Settings not given keep the profile's current value. For HTTPS with the server's
own certificate (--tls builtin), --ca-file names its https-root.pem.";

/// `openscm configure`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ConfigureArgs {
    /// The profile to write [default: default].
    #[arg(long, env = "OPENSCM_PROFILE")]
    profile: Option<String>,
    /// Endpoint: http(s)://host[:port].
    #[arg(long)]
    endpoint: Option<String>,
    /// Access key (AK).
    #[arg(long)]
    access_key: Option<String>,
    /// Project id (for v2 routes).
    #[arg(long)]
    project_id: Option<String>,
    /// Domain (account) id.
    #[arg(long)]
    domain_id: Option<String>,
    /// PEM file of CA certificates to trust for HTTPS (e.g. the server's https-root.pem).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Take endpoint, keys and ids from a server's DATA_DIR/credentials.json.
    #[arg(long, value_name = "PATH")]
    from_credentials: Option<PathBuf>,
    /// Output: table or json.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// Runs `openscm configure`.
pub async fn run(args: ConfigureArgs) -> ExitCode {
    let format = args.output;
    finish(format, async move { configure(args) }).await
}

fn configure(args: ConfigureArgs) -> Result<u8, Failure> {
    let path = profile::file_path(&env_var)?;
    let mut file = ProfileFile::load(&path)?;
    let name = args
        .profile
        .clone()
        .unwrap_or_else(|| profile::DEFAULT_PROFILE.to_owned());
    let mut p = file.profiles.get(&name).cloned().unwrap_or_default();

    if let Some(creds) = &args.from_credentials {
        let c = CredentialsFile::load(creds)?;
        p.endpoint = c.endpoint.or(p.endpoint);
        p.access_key = Some(c.credentials.access_key);
        p.secret_key = Some(c.credentials.secret_key);
        p.domain_id = c.credentials.domain_id.or(p.domain_id);
        p.project_id = c.credentials.project_id.or(p.project_id);
        // The root of the server's HTTPS certificate (`--tls builtin`), when it sits beside the
        // file and the endpoint is HTTPS. Not ca-root.pem: that is the root of the account's
        // certificates, which never serve OpenSCM itself.
        let root = creds.with_file_name(crate::server::HTTPS_ROOT_FILE);
        if p.ca_file.is_none()
            && p.endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("https:"))
            && root.is_file()
        {
            p.ca_file = std::fs::canonicalize(&root).ok();
        }
    }
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    p.endpoint = given(&args.endpoint).or(p.endpoint);
    p.access_key = given(&args.access_key).or(p.access_key);
    p.project_id = given(&args.project_id).or(p.project_id);
    p.domain_id = given(&args.domain_id).or(p.domain_id);
    if let Some(ca) = &args.ca_file {
        p.ca_file = Some(
            std::fs::canonicalize(ca)
                .map_err(|e| Failure::Usage(format!("--ca-file {}: {e}", ca.display())))?,
        );
    }

    let interactive = stdin_is_terminal();
    if args.from_credentials.is_none() {
        if interactive {
            prompt_missing(&mut p)?;
        } else if p.secret_key.is_none() || args.access_key.is_some() {
            // A script pipes the secret (a new access key comes with its secret).
            p.secret_key = Some(read_secret_line()?);
        }
    }
    for (what, missing) in [
        ("endpoint", p.endpoint.is_none()),
        ("access key", p.access_key.is_none()),
        ("secret key", p.secret_key.is_none()),
    ] {
        if missing {
            return Err(Failure::Usage(format!(
                "no {what} for profile {name:?}: give it (see --help)"
            )));
        }
    }
    // The endpoint must be one the client accepts.
    if let (Some(endpoint), Some(ak), Some(sk)) = (&p.endpoint, &p.access_key, &p.secret_key) {
        scm_client::Client::new(
            endpoint,
            scm_client::Credentials {
                access_key: ak.clone(),
                secret_key: sk.clone(),
                domain_id: None,
                project_id: None,
            },
        )
        .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    file.profiles.insert(name.clone(), p.clone());
    file.save(&path)?;
    let summary = serde_json::json!({
        "profile": name,
        "file": path.display().to_string(),
        "endpoint": p.endpoint,
        "access_key": p.access_key,
        "project_id": p.project_id,
        "domain_id": p.domain_id,
        "ca_file": p.ca_file.as_ref().map(|c| c.display().to_string()),
    });
    output::print(format_of(&args), &summary, || {
        output::fields(&[
            ("profile", Some(name.clone())),
            ("file", Some(path.display().to_string())),
            ("endpoint", p.endpoint.clone()),
            ("access_key", p.access_key.clone()),
            ("project_id", p.project_id.clone()),
            ("domain_id", p.domain_id.clone()),
            (
                "ca_file",
                p.ca_file.as_ref().map(|c| c.display().to_string()),
            ),
        ])
    });
    Ok(0)
}

fn format_of(args: &ConfigureArgs) -> Format {
    args.output
}

/// Asks on the terminal for each setting (Enter keeps the current value).
fn prompt_missing(p: &mut Profile) -> Result<(), Failure> {
    let ask = |label: &str, current: Option<&str>| -> Result<Option<String>, Failure> {
        use std::io::Write;
        let shown = current.map(|c| format!(" [{c}]")).unwrap_or_default();
        eprint!("{label}{shown}: ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Usage(format!("cannot read the terminal: {e}")))?;
        let line = line.trim();
        Ok(if line.is_empty() {
            current.map(str::to_owned)
        } else {
            Some(line.to_owned())
        })
    };
    p.endpoint = ask("Endpoint (http(s)://host:port)", p.endpoint.as_deref())?;
    p.access_key = ask("Access key", p.access_key.as_deref())?;
    let hint = if p.secret_key.is_some() {
        " [keep]"
    } else {
        ""
    };
    let secret = rpassword::prompt_password(format!("Secret key{hint}: "))
        .map_err(|e| Failure::Usage(format!("cannot read the secret key: {e}")))?;
    if !secret.trim().is_empty() {
        p.secret_key = Some(SecretKey::new(secret.trim().to_owned()));
    }
    p.project_id = ask("Project id", p.project_id.as_deref())?;
    let ca = ask(
        "CA bundle for HTTPS (empty: the platform's roots)",
        p.ca_file.as_deref().and_then(|c| c.to_str()),
    )?;
    p.ca_file = ca.map(PathBuf::from);
    Ok(())
}

/// The secret key as one line of stdin.
fn read_secret_line() -> Result<SecretKey, Failure> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("cannot read the secret key from stdin: {e}")))?;
    let secret = line.trim();
    if secret.is_empty() {
        return Err(Failure::Usage(
            "no secret key on stdin (pipe it in, or run configure on a terminal)".into(),
        ));
    }
    Ok(SecretKey::new(secret.to_owned()))
}
