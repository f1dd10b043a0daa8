//! An operator's first hour and later ones, against the real binary: which store a start opens
//! (and the refusal of a data directory that looks like a mistake), the shipped systemd unit and
//! sample config, and a backup restored on another "machine" (a new directory).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use scm_client::Client;

use crate::processes::{BIN, EndpointForTests, free_port, issue_one};
use crate::routes::buy_body;

/// A server process started by [`run`], with its output in files.
pub(crate) struct Running {
    child: Option<Child>,
    pub(crate) url: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, and the clean exit it must give.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            let status = c.wait().unwrap();
            assert!(status.success(), "clean stop: {}", self.stderr());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut answer = Vec::new();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_ok()
        && s.read_to_end(&mut answer).is_ok()
        && answer.starts_with(b"HTTP/1.1 200")
}

/// `openscm server --listen 127.0.0.1:<free port> ARGS` in `cwd` with `HOME=home` (so that no
/// real home directory's store is looked at): `Ok` once it answers `/health` (or, with HTTPS,
/// says it listens), `Err` with its output when it exits first.
pub(crate) fn run<S: AsRef<OsStr>>(
    cwd: &Path,
    home: &Path,
    args: &[S],
) -> Result<Running, (String, String)> {
    let port = free_port();
    let n = std::fs::read_dir(cwd).map(|d| d.count()).unwrap_or(0);
    let logs = cwd.join(format!(".run-{port}-{n}"));
    let (stdout, stderr) = (logs.with_extension("out"), logs.with_extension("err"));
    let child = Command::new(BIN)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("OPENSCM_DATA_DIR")
        .env_remove("OPENSCM_CONFIG")
        .env("OPENSCM_LOG", "info")
        .env("NO_COLOR", "1")
        .arg("server")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running {
        child: Some(child),
        url: format!("http://127.0.0.1:{port}"),
        stdout,
        stderr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if health(port) || running.stdout().contains("OpenSCM listening on https://") {
            return Ok(running);
        }
        if let Some(c) = running.child.as_mut()
            && c.try_wait().unwrap().is_some()
        {
            running.child = None;
            return Err((running.stdout(), running.stderr()));
        }
        assert!(
            Instant::now() < deadline,
            "the server neither answered nor exited in 30 s: {}",
            running.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn refused<S: AsRef<OsStr>>(cwd: &Path, home: &Path, args: &[S]) -> String {
    match run(cwd, home, args) {
        Ok(r) => panic!("the start was not refused: {}", r.stdout()),
        Err((_, err)) => err,
    }
}

fn admin_in(cwd: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("OPENSCM_DATA_DIR")
        .env_remove("OPENSCM_CONFIG")
        .arg("admin")
        .args(args)
        .output()
        .unwrap()
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let project = d.path().join("project");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(project.join("sub")).unwrap();
    (d, home, project)
}

/// The README's first command, `openscm server` in an empty directory, still bootstraps
/// ./openscm-data, and says so in a banner with absolute paths; the next start opens the same
/// store and says which. Started from a subdirectory, or from elsewhere with the store in the home
/// directory, the server refuses to make a second store (nothing is created) and names the first;
/// `admin` there names it too; `--init` makes the second store on purpose.
#[test]
fn the_default_data_directory_is_found_or_refused_never_silently_doubled() {
    let (_d, home, project) = dirs();
    let none: [&str; 0] = [];
    let store = project.join("openscm-data");
    let mut first = run(&project, &home, &none).unwrap();
    let out = first.stdout();
    assert!(
        out.contains(&format!("NEW STORE bootstrapped in {}", store.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "store: data dir {}, database SQLite {}, master key {}",
            store.display(),
            store.join("openscm.db").display(),
            store.join("master.key").display()
        )),
        "{out}"
    );
    assert!(
        first.stderr().contains("WARN") && first.stderr().contains("bootstrapped a NEW store"),
        "{}",
        first.stderr()
    );
    first.stop();
    let mut again = run(&project, &home, &none).unwrap();
    let out = again.stdout();
    assert!(!out.contains("NEW STORE"), "{out}");
    assert!(
        out.contains(&format!("store: data dir {}", store.display())),
        "{out}"
    );
    again.stop();

    // From a subdirectory: refused, the store named, nothing made.
    let sub = project.join("sub");
    let err = refused(&sub, &home, &none);
    assert!(err.contains("refusing to bootstrap a new store"), "{err}");
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert!(err.contains("--init"), "{err}");
    assert!(!sub.join("openscm-data").exists());
    let out = admin_in(&sub, &home, &["account", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no store here") && err.contains(&store.display().to_string()),
        "{err}"
    );
    assert!(!sub.join("openscm-data").exists());

    // From elsewhere, the store in the home directory.
    let elsewhere = project.parent().unwrap().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let err = refused(&elsewhere, &project, &none);
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert!(!elsewhere.join("openscm-data").exists());

    // On purpose.
    let mut second = run(&sub, &home, &["--init"]).unwrap();
    assert!(
        second.stdout().contains(&format!(
            "NEW STORE bootstrapped in {}",
            sub.join("openscm-data").display()
        )),
        "{}",
        second.stdout()
    );
    second.stop();
    // Now it has a store of its own: no --init needed.
    run(&sub, &home, &none).unwrap().stop();
}

/// A config file naming an existing store, overridden by --data-dir (or OPENSCM_DATA_DIR) with
/// a place that holds none, is refused, by `server` and by `server --check-config`; so is a data
/// directory full of other files. A fresh or empty --data-dir bootstraps as before.
#[test]
fn a_data_directory_that_looks_like_a_mistake_is_refused() {
    let (d, home, project) = dirs();
    let store = project.join("var-lib-openscm");
    let config = project.join("openscm.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", store.display())).unwrap();
    let cfg = config.to_str().unwrap();
    run(&project, &home, &["--config", cfg]).unwrap().stop();

    let other = d.path().join("other");
    let other_s = other.to_str().unwrap();
    let err = refused(&project, &home, &["--config", cfg, "--data-dir", other_s]);
    assert!(
        err.contains(&format!("the config file {}", config.display()))
            && err.contains(&store.display().to_string())
            && err.contains(other_s),
        "{err}"
    );
    assert!(!other.exists(), "nothing is created");
    let check = Command::new(BIN)
        .current_dir(&project)
        .env("HOME", &home)
        .args([
            "server",
            "--check-config",
            "--config",
            cfg,
            "--data-dir",
            other_s,
        ])
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("a start would refuse"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut forced = run(
        &project,
        &home,
        &["--config", cfg, "--data-dir", other_s, "--init"],
    )
    .unwrap();
    assert!(forced.stdout().contains("NEW STORE"), "{}", forced.stdout());
    forced.stop();

    // A directory of other things.
    let etc = d.path().join("etc-nginx");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("nginx.conf"), "events {}\n").unwrap();
    let err = refused(&project, &home, &["--data-dir", etc.to_str().unwrap()]);
    assert!(
        err.contains("is not empty") && err.contains("nginx.conf"),
        "{err}"
    );
    assert!(!etc.join("openscm.db").exists() && !etc.join("master.key").exists());

    // Fresh, and existing but empty (as the e2e suite and a service's state directory give it).
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::create_dir_all(empty.join("lost+found")).unwrap();
    run(&project, &home, &["--data-dir", empty.to_str().unwrap()])
        .unwrap()
        .stop();
    let fresh = d.path().join("fresh/data");
    run(&project, &home, &["--data-dir", fresh.to_str().unwrap()])
        .unwrap()
        .stop();
    // The config file kept in the data directory is no foreign file.
    let beside = d.path().join("with-config");
    std::fs::create_dir_all(&beside).unwrap();
    let config = beside.join("openscm.toml");
    std::fs::write(&config, "log_format = \"text\"\n").unwrap();
    run(
        &project,
        &home,
        &[
            "--data-dir",
            beside.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .unwrap()
    .stop();
}

/// An SQLite store backed up while its server runs (`VACUUM INTO` with the sqlite3 shell, as
/// docs/operations-backup.md says, plus the master key), restored into a new directory and
/// started there, gives back a certificate's private key identical to the one exported before.
#[tokio::test]
async fn a_backup_taken_while_serving_restores_on_a_new_machine() {
    let (d, home, _) = dirs();
    let data = d.path().join("old-machine/openscm-data");
    let data_s = data.to_str().unwrap().to_owned();
    let mut server = run(d.path(), &home, &["--data-dir", &data_s]).unwrap();
    let (client, id) = issue_one(&server.url, &data, "backup.it.test").await;
    let before = client.export(&id).await.unwrap();
    let key = before
        .private_key
        .clone()
        .expect("a key held by the server");

    // The backup, while the server runs: a consistent copy of the database, and the key.
    let backup = d.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    let sqlite3 = tool("sqlite3", "sqlite3");
    let out = Command::new(&sqlite3)
        .arg(data.join("openscm.db"))
        .arg(format!(
            "VACUUM INTO '{}'",
            backup.join("openscm.db").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "VACUUM INTO: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(data.join("master.key"), backup.join("master.key")).unwrap();
    std::fs::copy(
        data.join("credentials.json"),
        backup.join("credentials.json"),
    )
    .unwrap();
    // Written after the backup: not in it.
    let later = client.subscribe(&buy_body()).await.unwrap().cert[0]
        .cert_id
        .clone();
    server.stop();

    // The restore, on "another machine": the files into a new data directory, mode 0600.
    let restored = d.path().join("new-machine/var/lib/openscm");
    std::fs::create_dir_all(&restored).unwrap();
    for f in ["openscm.db", "master.key", "credentials.json"] {
        std::fs::copy(backup.join(f), restored.join(f)).unwrap();
        std::fs::set_permissions(
            restored.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let mut again = run(d.path(), &home, &["--data-dir", restored.to_str().unwrap()]).unwrap();
    assert!(!again.stdout().contains("NEW STORE"), "{}", again.stdout());
    let client = Client::from_credentials_file(restored.join("credentials.json"))
        .unwrap()
        .with_endpoint_for_tests(&again.url);
    let after = client.export(&id).await.unwrap();
    assert_eq!(after.private_key.as_deref(), Some(key.as_str()));
    assert_eq!(after.certificate, before.certificate);
    assert!(
        client.show(&later).await.is_err(),
        "a certificate bought after the backup is not in it"
    );
    again.stop();
}

/// The path of a command from a Debian package: missing, the test fails under CI=true and says
/// which package to install (`scripts/test-all` installs it).
pub(crate) fn tool(command: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
            .map(|p| p.join(command))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "{command} is missing: apt-get install -y {package} (scripts/test-all installs it)"
        ),
    }
}

/// A console sign-in form POSTed from the same origin; the status line of the answer.
fn sign_in(url: &str, access_key: &str, secret: &str) -> String {
    use std::io::{Read, Write};
    let port = url.rsplit(':').next().unwrap();
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = format!(
        "access_key={}&secret_key={secret}",
        access_key.replace(' ', "+")
    );
    s.write_all(
        format!(
            "POST /console/sign-in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Sec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// `openscm admin ARGS -o json` on the store in `data`.
fn admin_json(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("admin")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap()
}

/// Changes made with the admin CLI (accounts, projects, credentials, policies, pushes) and
/// refused console sign-ins are in the audit log, refused changes too: who (the CLI and its
/// user; the access key tried and its account), what, and the outcome. A policy allowing a
/// public suffix (`.com`, `co.uk`) is refused; the special-use ones stay allowed.
#[test]
fn admin_changes_and_refused_sign_ins_are_audited() {
    let (d, home, _) = dirs();
    let data = d.path().join("data");
    let mut server = run(d.path(), &home, &["--data-dir", data.to_str().unwrap()]).unwrap();
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("credentials.json")).unwrap())
            .unwrap();
    let ak = creds["access_key"].as_str().unwrap().to_owned();
    let account = creds["domain_id"].as_str().unwrap().to_owned();

    for (key, secret) in [
        (ak.as_str(), "wrong-secret"),
        ("NOSUCHKEY00000000000", "x"),
        ("a secret pasted here", "x"),
    ] {
        let status = sign_in(&server.url, key, secret);
        assert!(status.starts_with("HTTP/1.1 401"), "{key}: {status}");
    }

    for broad in [".com", "co.uk", ".test;.github.io", "."] {
        let out = admin_json(
            &data,
            &["policy", "set", "--account", &account, "--allow", broad],
        );
        assert!(!out.status.success(), "{broad} was allowed");
    }
    let out = admin_json(
        &data,
        &["policy", "set", "--account", &account, "--allow", ".com"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("public suffix"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = admin_json(
        &data,
        &[
            "policy",
            "set",
            "--account",
            &account,
            "--allow",
            ".test;.internal;.localhost;.example;.invalid;example.com",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(
        &admin_json(&data, &["account", "create", "--name", "audited"]).stdout,
    )
    .unwrap();
    let new_account = created["domain_id"].as_str().unwrap().to_owned();
    let cred: serde_json::Value = serde_json::from_slice(
        &admin_json(&data, &["credential", "create", "--account", &new_account]).stdout,
    )
    .unwrap();
    let new_ak = cred["access_key"].as_str().unwrap().to_owned();
    assert!(
        admin_json(&data, &["credential", "revoke", &new_ak])
            .status
            .success()
    );

    let out = admin_json(&data, &["audit", "--limit", "100"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |op: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        events
            .iter()
            .find(|e| e["operation"] == op && pred(e))
            .unwrap_or_else(|| panic!("no {op} event as expected in {events:#?}"))
            .clone()
    };
    let e = find("ConsoleSignIn", &|e| e["credential"] == ak.as_str());
    assert_eq!(
        (
            e["outcome"].as_str(),
            e["account"].as_str(),
            e["status"].as_u64()
        ),
        (Some("refused"), Some(account.as_str()), Some(401))
    );
    assert_eq!(e["source"], "127.0.0.1");
    let e = find("ConsoleSignIn", &|e| {
        e["credential"] == "NOSUCHKEY00000000000"
    });
    assert!(e["account"].is_null(), "{e}");
    let e = find("ConsoleSignIn", &|e| e["credential"].is_null());
    assert!(e["account"].is_null() && e["outcome"] == "refused", "{e}");
    let e = find("AdminSetPolicy", &|e| e["outcome"] == "refused");
    assert_eq!(e["targets"], serde_json::json!(["allow=.com"]));
    assert_eq!(e["account"], account.as_str());
    assert!(e["credential"].is_null());
    assert!(
        e["source"].as_str().unwrap().starts_with("admin-cli"),
        "{e}"
    );
    let e = find("AdminSetPolicy", &|e| e["outcome"] == "ok");
    assert_eq!(e["status"], 0);
    let e = find("AdminCreateAccount", &|_| true);
    assert_eq!(e["account"], new_account.as_str());
    let e = find("AdminCreateCredential", &|_| true);
    assert!(
        e["targets"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(new_ak)),
        "{e}"
    );
    let e = find("AdminRevokeCredential", &|_| true);
    assert_eq!(
        (e["account"].as_str(), e["outcome"].as_str()),
        (Some(new_account.as_str()), Some("ok"))
    );
    // The filter knows the new names.
    let out = admin_json(&data, &["audit", "--operation", "AdminSetPolicy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();
}

/// A delivery to an nginx target leaves in the target's directory the certificate and the key,
/// nothing else: its lock file is in the data directory's `locks/`, named by a hash of the path,
/// and says which file it guards.
#[tokio::test]
async fn delivery_locks_stay_out_of_the_operators_directories() {
    let (d, home, _) = dirs();
    let data = d.path().join("data");
    let data_s = data.to_str().unwrap().to_owned();
    run(d.path(), &home, &["--data-dir", &data_s])
        .unwrap()
        .stop();
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("credentials.json")).unwrap())
            .unwrap();
    let account = creds["domain_id"].as_str().unwrap();
    let ssl = d.path().join("etc-nginx-ssl");
    std::fs::create_dir_all(&ssl).unwrap();
    let config = d.path().join("openscm.toml");
    std::fs::write(
        &config,
        format!(
            "[jobs]\npoll_millis = 50\n\n[[push_targets]]\nname = \"web\"\nkind = \"nginx\"\n\
             account = \"{account}\"\nservice = \"ELB\"\nregion = \"r\"\n\
             cert_path = \"{ssl}/site.crt\"\nkey_path = \"{ssl}/site.key\"\n\
             reload_command = [\"true\"]\n",
            ssl = ssl.display()
        ),
    )
    .unwrap();
    let mut server = run(
        d.path(),
        &home,
        &["--data-dir", &data_s, "--config", config.to_str().unwrap()],
    )
    .unwrap();
    let (_client, id) = issue_one(&server.url, &data, "locks.it.test").await;
    crate::processes::admin(
        &data,
        None,
        Some(&config),
        &[
            "push",
            "--certificate",
            &id,
            "--service",
            "ELB",
            "--region",
            "r",
        ],
    );
    crate::processes::wait_for("the delivery", Duration::from_secs(20), || {
        ssl.join("site.key").exists()
    });
    let mut entries: Vec<String> = std::fs::read_dir(&ssl)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["site.crt", "site.key"]);
    let locks: Vec<PathBuf> = std::fs::read_dir(data.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(
        std::fs::read_to_string(&locks[0]).unwrap().trim(),
        ssl.join("site.crt").display().to_string()
    );
    server.stop();
}

/// In HTTPS files mode, a clients' endpoint whose host the served certificate does not name
/// (the default, `https://127.0.0.1:<port>`, with a certificate for a name only) is warned about
/// at start, on stdout and in the log; an endpoint the certificate covers (a `*.` name) is not.
#[test]
fn an_endpoint_the_served_certificate_does_not_cover_is_warned_about() {
    let (d, home, _) = dirs();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["*.example.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (d.path().join("tls.crt"), d.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let data = d.path().join("data");
    let tls = [
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert-file",
        cert_file.to_str().unwrap(),
        "--tls-key-file",
        key_file.to_str().unwrap(),
    ];
    let mut uncovered = run(d.path(), &home, &tls).unwrap();
    let out = uncovered.stdout();
    assert!(
        out.contains("warning: the clients' endpoint https://127.0.0.1:")
            && out.contains("names 127.0.0.1, which the certificate of")
            && out.contains("*.example.test"),
        "{out}"
    );
    assert!(
        uncovered.stderr().contains("WARN"),
        "{}",
        uncovered.stderr()
    );
    uncovered.stop();

    let mut covered_args = tls.to_vec();
    covered_args.extend(["--public-endpoint", "https://scm.example.test:8443"]);
    let mut covered = run(d.path(), &home, &covered_args).unwrap();
    assert!(
        !covered
            .stdout()
            .contains("clients' endpoint https://scm.example.test:8443 ("),
        "{}",
        covered.stdout()
    );
    assert!(
        !covered.stdout().contains("warning"),
        "{}",
        covered.stdout()
    );
    covered.stop();
}

/// The repository's `deploy/systemd/` (the unit and its sample config).
fn deploy_systemd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

/// The shipped unit passes `systemd-analyze verify` with nothing to say (the binary's path
/// pointed at the one built), its sandbox rates "OK" or better in `systemd-analyze security`
/// (exposure at most 2.0 of 10), it runs the sample config from where the sample says it goes,
/// with the data directory systemd makes for it, as the user the sysusers file makes.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let analyze = tool("systemd-analyze", "systemd");
    let d = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(deploy_systemd().join("openscm.service")).unwrap();
    assert!(
        shipped.contains(
            "ExecStart=/usr/local/bin/openscm server --config /etc/openscm/openscm.toml\n"
        )
    );
    assert!(shipped.contains("\nStateDirectory=openscm\n"));
    assert!(shipped.contains("\nCapabilityBoundingSet=\n"));
    let unit = d.path().join("openscm.service");
    std::fs::write(&unit, shipped.replace("/usr/local/bin/openscm", BIN)).unwrap();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on an unknown key or a bad value (it only warns): any word is a failure.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let out = Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for openscm.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(exposure <= 2.0, "exposure {exposure}: {text}");
    // Its user, as systemd-sysusers makes it (checked, not made).
    assert!(shipped.contains("\nUser=openscm\n"));
    let sysusers = deploy_systemd().join("openscm.sysusers");
    let out = Command::new(tool("systemd-sysusers", "systemd"))
        .arg("--dry-run")
        .arg(&sysusers)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("openscm") && !said.contains("rror"), "{said}");
}

/// The sample config of the unit parses and checks (`server --check-config`, which opens and
/// creates nothing), names the unit's state directory, and serves HTTPS.
#[test]
fn the_sample_service_config_is_valid() {
    let (_d, home, project) = dirs();
    let config = deploy_systemd().join("openscm.toml");
    let out = Command::new(BIN)
        .current_dir(&project)
        .env("HOME", &home)
        .env_remove("OPENSCM_DATA_DIR")
        .args(["server", "--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("the configuration is valid"), "{stdout}");
    assert!(
        stdout.contains("store: data dir /var/lib/openscm, database SQLite /var/lib/openscm/openscm.db, master key /var/lib/openscm/master.key"),
        "{stdout}"
    );
    assert!(stdout.contains("(HTTPS)"), "{stdout}");
    assert_eq!(
        std::fs::read_dir(&project).unwrap().count(),
        1,
        "nothing made"
    );

    // A mistake in it is found, with its key.
    let bad = project.join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&config).unwrap() + "\nlisten_adress = \"x\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen_adress"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The LICENSE file is the licence the workspace declares, in its standard text.
#[test]
fn the_license_file_is_the_declared_licence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("\nlicense = \"Apache-2.0\"\n"));
    let text = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    assert!(text.contains("Apache License\n                           Version 2.0, January 2004"));
    assert!(text.contains("END OF TERMS AND CONDITIONS"));
    assert!(text.contains("APPENDIX: How to apply the Apache License to your work."));
    assert_eq!(text.lines().count(), 202, "the standard text, whole");
}
