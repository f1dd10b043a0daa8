//! Running a target's commands (tests, reloads, hooks): argv without a shell, a time limit, the
//! delivery described in the environment, and a failure that says how it failed.

use std::process::Stdio;
use std::time::Duration;

use scm_core::deploy::{DeliveryError, Material};

/// The environment a command is told the delivery in: which certificate, which version, its
/// facts, and which delivery attempt this is (for scripts that log, notify or are idempotent).
pub(crate) fn delivery_env(m: &Material, target: &str) -> Vec<(String, String)> {
    let f = &m.facts;
    [
        ("OPENSCM_CERTIFICATE_ID", f.certificate_id.clone()),
        ("OPENSCM_VERSION", f.version.to_string()),
        ("OPENSCM_NAMES", f.names.join(",")),
        ("OPENSCM_SERIAL", f.serial_hex.clone()),
        ("OPENSCM_FINGERPRINT_SHA256", f.sha256_fingerprint.clone()),
        ("OPENSCM_NOT_AFTER", rfc3339_ms(f.not_after_ms)),
        ("OPENSCM_TARGET", target.to_owned()),
        ("OPENSCM_JOB_ID", m.context.job_id.to_string()),
        ("OPENSCM_ATTEMPT", m.context.attempt.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Unix milliseconds as RFC 3339 UTC (`2027-01-15T08:00:00Z`); out-of-range values give the
/// number itself, which a reader will notice.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// How a command failed.
#[derive(Debug)]
pub(crate) enum CommandFailure {
    /// It could not be started.
    Start(String),
    /// It ran past its time limit (it and its children were killed).
    Timeout(String),
    /// It ended unsuccessfully.
    Exit(String),
}

impl CommandFailure {
    /// The delivery error: a command that cannot start is misconfigured, a timeout is transient,
    /// and an unsuccessful exit refuses the material (`refuses`: a test command) or may pass
    /// (a reload, a hook).
    pub(crate) fn into_error(self, what: &str, refuses: bool) -> DeliveryError {
        match self {
            Self::Start(m) => {
                DeliveryError::misconfigured(format!("{what} {m}; previous certificate kept"))
            }
            Self::Timeout(m) => {
                DeliveryError::transient(format!("{what} {m}; previous certificate kept"))
            }
            Self::Exit(m) if refuses => {
                DeliveryError::permanent(format!("{what} {m}; previous certificate kept"))
            }
            Self::Exit(m) => {
                DeliveryError::transient(format!("{what} {m}; previous certificate kept"))
            }
        }
    }
}

/// Runs `argv` (no shell) with a time limit; the error says how it failed, without its output,
/// which is logged instead. The command gets a process group of its own, so that on a timeout
/// the programs it started are killed with it (a hook script's `sleep` or `curl` would otherwise
/// outlive it).
pub(crate) async fn run(
    argv: &[String],
    env: &[(String, String)],
    limit: Duration,
) -> Result<(), CommandFailure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandFailure::Start("is empty".into()));
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            CommandFailure::Start(format!("{program:?} could not start ({})", e.kind()))
        })?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(CommandFailure::Exit(format!(
                "{program:?} failed ({})",
                e.kind()
            )));
        }
        Err(_) => {
            // Dropping the child killed it; its group may still hold what it started.
            if let Some(pgid) = group {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            return Err(CommandFailure::Timeout(format!(
                "{program:?} timed out after {} s",
                limit.as_secs_f64()
            )));
        }
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    tracing::warn!(program = %program, status = %out.status, stderr = %tail, "push command failed");
    Err(CommandFailure::Exit(match out.status.code() {
        Some(code) => format!("{program:?} exited with status {code}"),
        None => format!("{program:?} was killed by a signal"),
    }))
}

/// Checks an optional command from the config: absent or empty is none; the error names `key`.
pub(crate) fn optional_argv(
    key: &str,
    argv: Option<&Vec<String>>,
) -> Result<Option<Vec<String>>, String> {
    match argv {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => required_argv(key, v).map(Some),
    }
}

/// Checks a required command from the config; the error names `key`.
pub(crate) fn required_argv(key: &str, argv: &[String]) -> Result<Vec<String>, String> {
    match argv.first() {
        None => Err(format!("{key} must name a program")),
        Some(p) if p.trim().is_empty() => Err(format!("{key} must name a program")),
        Some(_) => Ok(argv.to_vec()),
    }
}

/// Checks `timeout_seconds` (default 30, 1..=3600).
pub(crate) fn timeout(seconds: Option<u64>) -> Result<Duration, String> {
    let t = seconds.unwrap_or(30);
    if !(1..=3600).contains(&t) {
        return Err(format!("timeout_seconds: {t} is out of range (1..=3600)"));
    }
    Ok(Duration::from_secs(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_kills_what_the_command_started() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("survived");
        // The shell starts a child that would write the marker after the limit.
        let script = format!("(sleep 1; touch {}) & wait", marker.display());
        let argv = ["sh".to_owned(), "-c".to_owned(), script];
        let e = run(&argv, &[], Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, CommandFailure::Timeout(_)), "{e:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the command's child outlived the timeout");
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339_ms(1_800_000_000_000), "2027-01-15T08:00:00Z");
    }
}
