//! The job runner across real `openscm` processes. Pushes are queued with `openscm admin push`
//! and delivered by the servers' job workers to file targets whose reload command writes a line
//! per start and end of each delivery (`start <job> <server pid>`), so the log shows which
//! process ran which job, and when.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scm_client::Client;
use serde_json::Value;

use crate::routes::{apply_body, buy_body};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_openscm");

/// One `openscm server` process.
pub(crate) struct Server {
    pub(crate) child: Option<Child>,
    pub(crate) url: String,
    pub(crate) log: PathBuf,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `GET /health` with `Connection: close`, read until the server closes.
fn health_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

impl Server {
    pub(crate) fn start(data: &Path, db: Option<&str>, config: Option<&Path>) -> Self {
        let port = free_port();
        // Beside the data directory, which the server creates (0700) on first start.
        let log = data
            .parent()
            .unwrap_or(data)
            .join(format!("server-{port}.log"));
        let mut cmd = Command::new(BIN);
        // Its own process group, as a service manager gives it: the commands it runs (push
        // targets' reloads) are in it too, and `sigkill_group` stops them with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.arg("server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data)
            .env("OPENSCM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(db) = db {
            cmd.arg("--database-url").arg(db);
        }
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let child = cmd.spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready once `/health` answers; the probe asks the server to close the connection and
        // reads to the end, so the server has let go of it (and of its connection slot, which
        // the connection-cap test counts) before the test starts.
        while !health_answers(port) {
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            url,
            log,
        }
    }

    /// What the server has logged so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub(crate) fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGKILL to the server's whole process group (what systemd's `KillMode=control-group`
    /// and a shell's `kill -9 %job` do): the server and any command it is running die together.
    pub(crate) fn sigkill_group(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = format!("-{}", c.id());
            let killed = Command::new("kill")
                .args(["-KILL", "--", &group])
                .status()
                .unwrap();
            assert!(killed.success(), "kill -KILL -- {group}");
            c.wait().unwrap();
        }
    }

    pub(crate) fn sigterm(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status()
                .unwrap();
            let status = c.wait().unwrap();
            assert!(
                status.success(),
                "clean stop: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sigkill();
    }
}

pub(crate) fn admin(data: &Path, db: Option<&str>, config: Option<&Path>, args: &[&str]) -> Value {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data);
    if let Some(db) = db {
        cmd.arg("--database-url").arg(db);
    }
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    // JSON: the admin commands print tables unless asked.
    let out = cmd
        .arg("admin")
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn jobs(data: &Path, db: Option<&str>) -> Vec<Value> {
    admin(data, db, None, &["job", "list", "--limit", "1000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `(kind, job, pid)` of each line of the delivery log.
fn deliveries(log: &Path) -> Vec<(String, i64, u32)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.to_owned(),
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
            ))
        })
        .collect()
}

pub(crate) fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Config with file targets `t0..` (service ELB, region `r<i>`) whose reload command logs each
/// delivery's start and end and sleeps `seconds` between; job workers poll every `poll` ms.
fn config(
    dir: &Path,
    account: &str,
    targets: usize,
    seconds: f64,
    lease: u64,
    poll: u64,
) -> PathBuf {
    let log = dir.join("deliveries.log");
    let mut toml =
        format!("[jobs]\nlease_seconds = {lease}\npoll_millis = {poll}\nconcurrency = 4\n");
    for i in 0..targets {
        toml.push_str(&format!(
            "\n[[push_targets]]\nname = \"t{i}\"\nkind = \"nginx\"\naccount = \"{account}\"\n\
             service = \"ELB\"\nregion = \"r{i}\"\ncert_path = \"{out}/t{i}.crt\"\n\
             key_path = \"{out}/t{i}.key\"\ntimeout_seconds = 30\n\
             reload_command = [\"sh\", \"-c\", \"echo start $OPENSCM_JOB_ID $PPID >> {log}; \
             sleep {seconds}; echo end $OPENSCM_JOB_ID $PPID >> {log}\"]\n",
            out = dir.display(),
            log = log.display(),
        ));
    }
    let path = dir.join("openscm.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Bootstraps a store (a first server start), then returns the admin's client and account.
pub(crate) fn bootstrap(data: &Path, db: Option<&str>) -> (Value, String) {
    let mut first = Server::start(data, db, None);
    first.sigterm();
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("credentials.json")).unwrap())
            .unwrap();
    let account = creds["domain_id"].as_str().unwrap().to_owned();
    (creds, account)
}

async fn issued_certificate(server: &Server, data: &Path) -> String {
    issue_one(&server.url, data, "jobs.it.test").await.1
}

/// A client of the server at `url` with the credentials of the store in `data`, and the id of a
/// certificate it bought and had issued for `name`.
pub(crate) async fn issue_one(url: &str, data: &Path, name: &str) -> (Client, String) {
    let client = Client::from_credentials_file(data.join("credentials.json"))
        .unwrap()
        .with_endpoint_for_tests(url);
    let id = client.subscribe(&buy_body()).await.unwrap().cert[0]
        .cert_id
        .clone();
    client.apply(&id, &apply_body(name)).await.unwrap();
    (client, id)
}

pub(crate) trait EndpointForTests {
    fn with_endpoint_for_tests(self, url: &str) -> Client;
}

impl EndpointForTests for Client {
    /// The same credentials against another server (credentials.json names the first one).
    fn with_endpoint_for_tests(self, url: &str) -> Client {
        Client::new(url, self.credentials().clone()).unwrap()
    }
}

/// A delivery is running in server A when A is killed; server B takes the job over once A's
/// lease expires, and the job is done exactly once: one success in the history, the job `done`
/// after two attempts, and no further delivery.
#[tokio::test]
async fn a_job_survives_sigkill_of_its_worker_and_is_done_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, account) = bootstrap(&data, None);
    // Short polls: nothing announces that a lease expired, a worker finds it by polling.
    let config = config(dir.path(), &account, 1, 3.0, 2, 50);
    let mut a = Server::start(&data, None, Some(&config));
    let cert = issued_certificate(&a, &data).await;
    let queued = admin(
        &data,
        None,
        Some(&config),
        &[
            "push",
            "--certificate",
            &cert,
            "--service",
            "ELB",
            "--region",
            "r0",
        ],
    );
    let job = queued["deliveries"][0]["job_id"].as_i64().unwrap();
    let log = dir.path().join("deliveries.log");
    wait_for("A to start the delivery", Duration::from_secs(20), || {
        deliveries(&log)
            .iter()
            .any(|(k, j, _)| k == "start" && *j == job)
    });
    let a_pid = a.pid();
    // A's whole process group (its reload command has a group of its own and may finish: a
    // target may be reloaded again, so commands must be idempotent).
    a.sigkill_group();
    let b = Server::start(&data, None, Some(&config));
    wait_for("the job to be done", Duration::from_secs(30), || {
        jobs(&data, None)
            .iter()
            .any(|j| j["id"] == job && j["state"] == "done")
    });
    let record = jobs(&data, None)
        .into_iter()
        .find(|j| j["id"] == job)
        .unwrap();
    assert_eq!(record["attempts"], 2, "{record}");
    // Let anything left of A's delivery (its orphaned reload script) finish, then look.
    std::thread::sleep(Duration::from_secs(4));
    let runs = deliveries(&log);
    let starts: Vec<u32> = runs
        .iter()
        .filter(|(k, j, _)| k == "start" && *j == job)
        .map(|(_, _, pid)| *pid)
        .collect();
    assert_eq!(
        starts,
        vec![a_pid, b.pid()],
        "one start by A, one by B: {runs:?}"
    );
    let ends_by_b = runs
        .iter()
        .filter(|(k, j, pid)| k == "end" && *j == job && *pid == b.pid())
        .count();
    assert_eq!(ends_by_b, 1);
    // A's reload runs in a process group of its own (so that a timeout kills what it started),
    // so it may finish after A died: commands must be idempotent, and the record is B's alone.
    let ends_by_a = runs
        .iter()
        .filter(|(k, j, pid)| k == "end" && *j == job && *pid == a_pid)
        .count();
    assert!(ends_by_a <= 1, "{runs:?}");
    let client = Client::from_credentials_file(data.join("credentials.json"))
        .unwrap()
        .with_endpoint_for_tests(&b.url);
    let project = client.credentials().project_id.clone().unwrap();
    let history = client.v2_push_history(&project, &cert).await.unwrap();
    assert_eq!(
        history.push_history_list.len(),
        1,
        "one successful push recorded"
    );
    drop(b);
}

/// The PostgreSQL server of the suite, or `None` (with the reason printed) on a developer
/// machine that did not opt in; under `CI=true` a missing URL fails.
pub(crate) fn pg_base_url() -> Option<String> {
    match std::env::var("OPENSCM_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("OPENSCM_TEST_PG_URL is not set under CI=true: the PostgreSQL tests must run")
        }
        _ => {
            eprintln!(
                "PostgreSQL process test not run: set \
                 OPENSCM_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres, or run scripts/test-all"
            );
            None
        }
    }
}

/// A throwaway database beside `base`, dropped with the guard.
pub(crate) struct PgDb {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl PgDb {
    pub(crate) fn create(base: &str) -> Self {
        let (head, tail) = base.split_once("://").unwrap();
        let host = tail.split_once('/').map_or(tail, |(h, _)| h);
        let name = format!(
            "scm_it_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let admin_url = format!("{head}://{host}/postgres");
        let ok = Command::new("psql")
            .arg(&admin_url)
            .arg("-qc")
            .arg(format!("CREATE DATABASE {name}"))
            .status()
            .unwrap();
        assert!(ok.success(), "createdb on {admin_url}");
        Self {
            url: format!("{head}://{host}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .status();
    }
}

/// Two servers on one PostgreSQL, 36 queued pushes to 6 targets: every job is delivered exactly
/// once (one start and one end in the log), both servers did some of the work, and all are done,
/// within seconds although the workers poll only once a minute (LISTEN/NOTIFY).
#[tokio::test]
async fn two_servers_on_one_postgres_never_run_one_job_at_once() {
    let Some(base) = pg_base_url() else { return };
    let db = PgDb::create(&base);
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let (_, account) = bootstrap(&data_a, Some(&db.url));
    // The second server shares the database, so it must share the master key.
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(data_a.join("master.key"), data_b.join("master.key")).unwrap();
    let targets = 6;
    // Polls a minute apart: the queued jobs reach the workers by NOTIFY, and a worker with a
    // free slot looks again at once.
    let config = config(dir.path(), &account, targets, 0.3, 10, 60_000);
    let a = Server::start(&data_a, Some(&db.url), Some(&config));
    let b = Server::start(&data_b, Some(&db.url), Some(&config));
    let cert = issued_certificate(&a, &data_a).await;
    let mut queued = Vec::new();
    for i in 0..36 {
        let region = format!("r{}", i % targets);
        let job = admin(
            &data_a,
            Some(&db.url),
            Some(&config),
            &[
                "push",
                "--certificate",
                &cert,
                "--service",
                "ELB",
                "--region",
                &region,
            ],
        );
        queued.push(job["deliveries"][0]["job_id"].as_i64().unwrap());
    }
    wait_for("all jobs done", Duration::from_secs(90), || {
        let all = jobs(&data_a, Some(&db.url));
        queued
            .iter()
            .all(|id| all.iter().any(|j| j["id"] == *id && j["state"] == "done"))
    });
    let runs = deliveries(&dir.path().join("deliveries.log"));
    for id in &queued {
        let of_job: Vec<_> = runs.iter().filter(|(_, j, _)| j == id).collect();
        let starts = of_job.iter().filter(|(k, _, _)| k == "start").count();
        let ends = of_job.iter().filter(|(k, _, _)| k == "end").count();
        assert_eq!((starts, ends), (1, 1), "job {id} ran once: {of_job:?}");
    }
    let pids: std::collections::HashSet<u32> = runs.iter().map(|(_, _, p)| *p).collect();
    assert_eq!(
        pids,
        [a.pid(), b.pid()].into_iter().collect(),
        "both servers claimed jobs"
    );
    // (The recurring reminder sweep queues its own next run: only the pushes count here.)
    for j in jobs(&data_a, Some(&db.url))
        .into_iter()
        .filter(|j| queued.iter().any(|id| j["id"] == *id))
    {
        assert_eq!(j["attempts"], 1, "{j}");
    }
    drop((a, b));
}

/// `openscm admin` on a data directory without a store refuses, and creates nothing (no master
/// key, no database, no CA).
#[test]
fn admin_refuses_a_data_dir_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["admin", "account", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no store here") && stderr.contains("start the server once"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing was created");
    // After a first start, the same command works.
    let mut server = Server::start(&data, None, None);
    server.sigterm();
    let accounts = admin(&data, None, None, &["account", "list"]);
    assert_eq!(accounts.as_array().map(Vec::len), Some(1));
}
