//! The server as an internet-facing API must hold up: against the real binary, hostile clients
//! (bodies sent unauthenticated or slowly, floods of connections, replayed token requests),
//! greedy accounts (rate limits, quotas, key-generation bursts), and operator mistakes (settings
//! out of range, targets writing one file, file modes under a permissive umask).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use scm_client::Client;
use scm_proto::Operation;
use scm_proto::v3::{ApplicationBody, PurchaseBody};

use crate::processes::{BIN, EndpointForTests, Server, admin, bootstrap};
use crate::routes::{apply_body, buy_body};

/// A bootstrapped data directory, its admin account, and a config file with `toml`.
fn prepared(dir: &Path, toml: &str) -> (PathBuf, String, PathBuf) {
    let data = dir.join("data");
    let (_, account) = bootstrap(&data, None);
    let config = dir.join("openscm.toml");
    std::fs::write(&config, toml.replace("ACCOUNT", &account)).unwrap();
    (data, account, config)
}

fn client(server: &Server, data: &Path) -> Client {
    Client::from_credentials_file(data.join("credentials.json"))
        .unwrap()
        .with_endpoint_for_tests(&server.url)
}

fn port(server: &Server) -> u16 {
    server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap()
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port(server))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Reads until the peer closes (or the read timeout), returning what came.
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An unsigned POST announcing a 1 MiB body (and asking for `100 Continue`) is answered 401 from
/// its head at once: no `100 Continue`, nothing of the body read, the connection closed. 300 such
/// connections, each sending a little of its body, leave the server's memory flat.
#[test]
fn unauthenticated_bodies_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    // All 300 from one address: room for them (the per-address cap has a test of its own).
    let (data, _, config) = prepared(dir.path(), "[limits]\nmax_connections_per_address = 1024\n");
    let server = Server::start(&data, None, Some(&config));
    let head = "POST /v3/scm/certificates/buy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 1048576\r\nExpect: 100-continue\r\n\r\n";
    let mut s = connect(&server);
    let started = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    let answer = read_all(&mut s);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("APIGW.0301"), "{answer}");

    uploads_leave_memory_flat(&server, head, "HTTP/1.1 401");
}

/// 300 connections each sending `head` (announcing 1 MiB) and 16 KiB of the body, as clients
/// pushing data would: the server's memory stays within 40 MiB of where it was, and every one is
/// answered with `answer` and closed.
fn uploads_leave_memory_flat(server: &Server, head: &str, answer: &str) {
    let before = rss_kib(server.pid());
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = connect(server);
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(&[b'x'; 16 * 1024]);
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.pid());
    assert!(
        after < before + 40 * 1024,
        "300 unauthenticated 1 MiB uploads ({head:?}) took the server from {before} KiB to {after} KiB"
    );
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let got = read_all(&mut s);
        assert!(got.starts_with(answer), "{head:?}: {got}");
    }
}

/// A signed request whose body trickles in is answered 408 `APIGW.0202` when the body deadline
/// passes, and the connection is closed; nothing is bought.
#[tokio::test]
async fn a_slow_body_meets_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(dir.path(), "[limits]\nbody_timeout_seconds = 2\n");
    let server = Server::start(&data, None, Some(&config));
    let c = client(&server, &data);
    let body = serde_json::to_vec(&buy_body()).unwrap();
    let prepared = c.prepare(&c.request(Operation::SubscribeCertificate, &[], &[], Some(&body)));
    let mut head = format!("POST {} HTTP/1.1\r\n", prepared.target);
    for (k, v) in &prepared.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut s = connect(&server);
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    for b in &body {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        if started.elapsed() > Duration::from_secs(2) {
            answer = read_all(&mut s);
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("APIGW.0202"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let listed = c.list_certificates(&Default::default()).await.unwrap();
    assert_eq!(listed.total_count, 0, "nothing bought");
}

/// With the connection cap full, a connection opened before still gets `/health` at once, and a
/// new one is refused at once (503 `APIGW.0309`); an idle keep-alive connection is closed after
/// the header timeout, and the slot is free again.
#[test]
fn the_connection_cap_refuses_at_once_and_idle_connections_close() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(
        dir.path(),
        "[limits]\nmax_connections = 20\nheader_timeout_seconds = 3\n",
    );
    let server = Server::start(&data, None, Some(&config));
    // Let the server finish with the readiness probe's connection before the slots are counted.
    std::thread::sleep(Duration::from_millis(200));
    let mut health = connect(&server);
    let ask = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    health.write_all(ask).unwrap();
    let mut buf = [0u8; 4096];
    let n = health.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Fill the other 19 slots with idle connections.
    let idle: Vec<TcpStream> = (0..19).map(|_| connect(&server)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    health.write_all(ask).unwrap();
    let n = health.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "/health took {:?} with the cap full",
        started.elapsed()
    );
    let started = Instant::now();
    let mut extra = connect(&server);
    let refused = read_all(&mut extra);
    assert!(
        refused.starts_with("HTTP/1.1 503"),
        "answer {refused:?} after {:?}; server log:\n{}",
        started.elapsed(),
        server.log()
    );
    assert!(refused.contains("APIGW.0309"), "{refused}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    // The idle ones (and the keep-alive one) are closed by the server after the header timeout.
    let started = Instant::now();
    for mut s in idle {
        assert_eq!(read_all(&mut s), "", "closed without an answer");
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        read_all(&mut health),
        "",
        "the idle keep-alive connection is closed"
    );
    let mut again = connect(&server);
    again.write_all(ask).unwrap();
    let n = again.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

/// A token request replayed many times leaves at most the configured number of live tokens:
/// past the limit the oldest stop working.
#[tokio::test]
async fn live_tokens_per_credential_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(dir.path(), "[limits]\nmax_tokens_per_credential = 3\n");
    let server = Server::start(&data, None, Some(&config));
    let c = client(&server, &data);
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(c.create_token().await.unwrap().token);
    }
    for (i, t) in tokens.iter().enumerate() {
        let listed = c
            .with_token(t.clone())
            .list_certificates(&Default::default())
            .await;
        match i {
            0 | 1 => assert_eq!(
                listed.map(|_| ()).unwrap_err().code(),
                Some("APIGW.0301"),
                "token {i} was ended by newer ones"
            ),
            _ => assert!(listed.is_ok(), "token {i}"),
        }
    }
}

/// An account past its rate gets 429 `APIGW.0308` with `Retry-After`; another account is not
/// slowed by it. An account at its quota cannot buy, and the refused order writes nothing.
#[tokio::test]
async fn rate_limits_and_quotas_answer_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (data, account, config) = prepared(
        dir.path(),
        "[limits]\nrate_limit_per_second = 2\nrate_limit_burst = 5\n\
         [quotas]\ncertificates_per_account = 3\n",
    );
    let server = Server::start(&data, None, Some(&config));
    let c = client(&server, &data);
    let mut throttled = None;
    for _ in 0..8 {
        let resp = c
            .call(Operation::ListCertificates, &[], &[], None)
            .await
            .unwrap();
        if resp.status == 429 {
            throttled = Some(resp);
            break;
        }
    }
    let resp = throttled.expect("the account was never throttled");
    assert_eq!(resp.error().unwrap().error_code, "APIGW.0308");
    let wait: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // Another account has its own budget.
    let other = admin(&data, None, None, &["account", "create", "--name", "other"]);
    let cred = admin(
        &data,
        None,
        None,
        &[
            "credential",
            "create",
            "--account",
            other["domain_id"].as_str().unwrap(),
        ],
    );
    let other = Client::new(
        &server.url,
        scm_client::Credentials::new(
            cred["access_key"].as_str().unwrap(),
            cred["secret_key"].as_str().unwrap(),
        ),
    )
    .unwrap();
    other.list_certificates(&Default::default()).await.unwrap();
    // Quota: 3 certificates; after the budget refills, 2 + 2 is refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let two = PurchaseBody {
        order_number: Some(2),
        ..buy_body()
    };
    c.subscribe(&two).await.unwrap();
    let over = c.subscribe(&two).await.unwrap_err();
    assert_eq!(
        (over.status(), over.code()),
        (Some(400), Some("SCM.0011")),
        "{over}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listed = c.list_certificates(&Default::default()).await.unwrap();
    assert_eq!(listed.total_count, 2, "the refused order wrote nothing");
    let _ = account;
}

/// One account's burst of RSA_4096 applications does not hold up another account's EC ones.
#[tokio::test]
async fn one_accounts_key_burst_does_not_stall_another() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(dir.path(), "[limits]\nrate_limit_per_second = 0\n");
    let server = Server::start(&data, None, Some(&config));
    let greedy = client(&server, &data);
    let other = admin(&data, None, None, &["account", "create", "--name", "calm"]);
    let cred = admin(
        &data,
        None,
        None,
        &[
            "credential",
            "create",
            "--account",
            other["domain_id"].as_str().unwrap(),
        ],
    );
    let calm = Client::new(
        &server.url,
        scm_client::Credentials::new(
            cred["access_key"].as_str().unwrap(),
            cred["secret_key"].as_str().unwrap(),
        ),
    )
    .unwrap();
    let many = PurchaseBody {
        order_number: Some(12),
        ..buy_body()
    };
    let burst_ids: Vec<String> = greedy
        .subscribe(&many)
        .await
        .unwrap()
        .cert
        .into_iter()
        .map(|c| c.cert_id)
        .collect();
    let calm_ids: Vec<String> = calm
        .subscribe(&PurchaseBody {
            order_number: Some(10),
            ..buy_body()
        })
        .await
        .unwrap()
        .cert
        .into_iter()
        .map(|c| c.cert_id)
        .collect();

    let mut burst = Vec::new();
    for (i, id) in burst_ids.into_iter().enumerate() {
        let greedy = greedy.clone();
        burst.push(tokio::spawn(async move {
            let body = ApplicationBody {
                key_algorithm: Some("RSA_4096".into()),
                ..apply_body(&format!("rsa{i}.burst.test"))
            };
            greedy.apply(&id, &body).await
        }));
    }
    // The burst under way: its keys are made at most one per core and the rest wait their turn
    // (all at once, they would take every core from everyone else, whatever the load).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let gauges = || async {
        let (_, body) = crate::metrics_audit::scrape(&server.url, None).await;
        let running = crate::metrics_audit::sample(&body, "openscm_key_generations_running");
        let waiting = crate::metrics_audit::sample(&body, "openscm_key_generations_waiting");
        match (running, waiting) {
            (Some(r), Some(w)) if r + w >= 6.0 => Ok((r, w)),
            _ => Err(format!("running {running:?}, waiting {waiting:?}")),
        }
    };
    let (running, waiting) = crate::harness::eventually(
        "the burst's key generations",
        Duration::from_secs(30),
        gauges,
    )
    .await;
    assert!(
        (1.0..=cores).contains(&running) && waiting >= 1.0,
        "{running} RSA generations running and {waiting} waiting during a burst of 12 ({cores} cores)"
    );
    // Five EC keys, then five RSA_2048 ones (which need a core of their own), made by the server.
    let mut ec = Vec::new();
    let mut rsa = Vec::new();
    for (i, id) in calm_ids[..10].iter().enumerate() {
        let body = ApplicationBody {
            key_algorithm: Some(if i < 5 { "EC_P256" } else { "RSA_2048" }.into()),
            ..apply_body(&format!("k{i}.calm.test"))
        };
        let started = Instant::now();
        calm.apply(id, &body).await.unwrap();
        if i < 5 {
            ec.push(started.elapsed());
        } else {
            rsa.push(started.elapsed());
        }
    }
    let burst_done = burst.iter().filter(|t| t.is_finished()).count();
    ec.sort();
    rsa.sort();
    for t in burst {
        t.await.unwrap().unwrap();
    }
    // The burst's keys are made one at a time (one per account at once), 12 RSA_4096 keys in
    // seconds; the calm account's own RSA keys take their turn beside it, not after it. Queued
    // behind the burst, they would end after it: a matter of order, whatever the machine's load.
    assert!(
        burst_done < 6,
        "{burst_done} of 12 RSA_4096 keys of the burst were made before the calm account's 5 \
         RSA_2048 and 5 EC applications were done (they took {rsa:?} and {ec:?})"
    );
}

/// The output of a start that must fail.
fn start_fails(dir: &Path, toml: &str) -> String {
    let data = dir.join("data");
    let config = dir.join("bad.toml");
    std::fs::write(&config, toml).unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{toml} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Settings out of range, and targets that would write one file, stop the start and name what is
/// wrong.
#[test]
fn operator_mistakes_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, account) = bootstrap(&dir.path().join("data"), None);
    let target = |name: &str, cert: &str, key: &str| {
        format!(
            "[[push_targets]]\nname = \"{name}\"\nkind = \"nginx\"\naccount = \"{account}\"\n\
             service = \"ELB\"\nregion = \"r\"\ncert_path = \"{cert}\"\nkey_path = \"{key}\"\n\
             reload_command = [\"true\"]\n"
        )
    };
    for (toml, named) in [
        (
            "max_clock_skew_seconds = 30\n".to_owned(),
            "max_clock_skew_seconds",
        ),
        (
            "max_clock_skew_seconds = 100000000\n".to_owned(),
            "max_clock_skew_seconds",
        ),
        ("token_ttl_seconds = 0\n".to_owned(), "token_ttl_seconds"),
        (
            "shutdown_grace_seconds = 0\n".to_owned(),
            "shutdown_grace_seconds",
        ),
        (
            "[jobs]\nlease_seconds = 0\n".to_owned(),
            "jobs.lease_seconds",
        ),
        (
            "[jobs]\nconcurrency = 100000\n".to_owned(),
            "jobs.concurrency",
        ),
        (
            "[limits]\nmax_connections = 1\n".to_owned(),
            "limits.max_connections",
        ),
        (
            "[limits]\nbody_timeout_seconds = 0\n".to_owned(),
            "limits.body_timeout_seconds",
        ),
        (
            "[keys]\nrsa_pool_size = 1000\n".to_owned(),
            "keys.rsa_pool_size",
        ),
        (
            "[quotas]\norders_per_day = 0\n".to_owned(),
            "quotas.orders_per_day",
        ),
        (
            "[egress]\nmax_redirects = 99\n".to_owned(),
            "egress.max_redirects",
        ),
        (
            format!(
                "{}{}",
                target("a", "/tmp/x/site.crt", "/tmp/x/site.key"),
                target("b", "/tmp/x/other.crt", "/tmp/x/./site.key")
            ),
            "site.key is also written by push target \"a\"",
        ),
        (
            target("a", "/tmp/x/site.crt", "/tmp/x/site.key")
                .replace("reload_command", "timeout_seconds = 0\nreload_command"),
            "timeout_seconds",
        ),
    ] {
        let err = start_fails(dir.path(), &toml);
        assert!(err.contains(named), "{toml}: {err}");
    }
    // The shortest skew window allowed works.
    let data = dir.path().join("data");
    let config = dir.path().join("ok.toml");
    std::fs::write(&config, "max_clock_skew_seconds = 60\n").unwrap();
    let mut server = Server::start(&data, None, Some(&config));
    server.sigterm();
    // An issuance policy must be domain suffixes.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "admin",
            "policy",
            "set",
            "--account",
            &account,
            "--allow",
            ".test;*",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a domain suffix"));
}

/// Under a permissive umask the data directory is 0700 and the database, master key and
/// credentials are 0600; `sqlite://PATH` (no `?mode=`) creates a new database.
#[test]
fn files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = dir.path().join("elsewhere.db");
    let port = crate::processes::free_port();
    let script = format!(
        "umask 000; exec {BIN} server --listen 127.0.0.1:{port} --data-dir {} --database-url sqlite://{}",
        data.display(),
        db.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // It listens before it bootstraps: wait for what the first start writes, too.
    crate::processes::wait_for("the server", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok() && data.join("ca-root.pem").exists()
    });
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for f in [
        db.clone(),
        data.join("master.key"),
        data.join("credentials.json"),
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&data.join("ca-root.pem")), 0o644);
    assert_eq!(mode(&data.join("https-root.pem")), 0o644);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A connection from `source` (a loopback address of its own) to the server (std has no
/// bind-then-connect: through tokio's `TcpSocket` on a throwaway runtime).
fn connect_from(server: &Server, source: &str) -> TcpStream {
    let port = port(server);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap()
    });
    let std = stream.into_std().unwrap();
    std.set_nonblocking(false).unwrap();
    std.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std
}

/// The console's routes read no body before their checks: a sign-in form announcing 1 MiB is
/// refused (413) from its head, sign-out and export without a session are sent to the sign-in
/// page (303) unread; 300 such uploads to each route leave the server's memory flat.
#[test]
fn console_bodies_are_limited_and_never_read_before_the_session() {
    let dir = tempfile::tempdir().unwrap();
    // All 300 from one address: room for them (the per-address cap has a test of its own).
    let (data, _, config) = prepared(dir.path(), "[limits]\nmax_connections_per_address = 1024\n");
    let server = Server::start(&data, None, Some(&config));
    let routes = [
        ("/console/sign-in", "HTTP/1.1 413"),
        ("/console/sign-out", "HTTP/1.1 303"),
        (
            "/console/certificates/scs1700000000000/export",
            "HTTP/1.1 303",
        ),
    ];
    for (path, answer) in routes {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 1048576\r\n\r\n"
        );
        uploads_leave_memory_flat(&server, &head, answer);
    }
}

/// A sign-in form that trickles in is answered 408 at the body deadline, not at the request
/// deadline.
#[test]
fn a_slow_console_form_meets_the_body_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(dir.path(), "[limits]\nbody_timeout_seconds = 2\n");
    let server = Server::start(&data, None, Some(&config));
    let body = "access_key=AK&secret_key=SK";
    let mut s = connect(&server);
    s.write_all(
        format!(
            "POST /console/sign-in HTTP/1.1\r\nHost: x\r\nSec-Fetch-Site: same-origin\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let started = Instant::now();
    s.write_all(&body.as_bytes()[..3]).unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered after {:?}, not at the 2 s body deadline",
        started.elapsed()
    );
}

/// One address holding its whole share of connections (and asking for more) does not keep
/// others out: another address's `/health` is answered, quickly, while the share is held.
#[test]
fn one_address_holding_its_share_leaves_room_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(
        dir.path(),
        "[limits]\nmax_connections = 64\nmax_connections_per_address = 16\n",
    );
    let server = Server::start(&data, None, Some(&config));
    // The attacker: 16 connections that sent a byte (so the first-byte deadline lets them
    // stay), then more, which are refused at once.
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut s = connect_from(&server, "127.0.0.2");
        s.write_all(b"G").unwrap();
        held.push(s);
    }
    let mut extra = connect_from(&server, "127.0.0.2");
    let refused = read_all(&mut extra);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // Everyone else.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let mut s = connect_from(&server, "127.0.0.3");
        let started = Instant::now();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let answer = read_all(&mut s);
        slowest = slowest.max(started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // Generous: the figure (p99 under 100 ms) is the hardening benchmark's; this only shows the
    // others are served, not queued behind the share.
    assert!(
        slowest < Duration::from_secs(2),
        "slowest /health {slowest:?}"
    );
    drop(held);
}

/// The console's forms must come from the console: a form posted from another site is refused
/// (403) whatever it carries, and a sign-in with neither `Origin` nor `Sec-Fetch-Site` needs the
/// sign-in page's own token.
#[test]
fn console_forms_from_elsewhere_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, config) = prepared(dir.path(), "");
    let server = Server::start(&data, None, Some(&config));
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("credentials.json")).unwrap())
            .unwrap();
    let form = format!(
        "access_key={}&secret_key={}",
        creds["access_key"].as_str().unwrap(),
        creds["secret_key"].as_str().unwrap()
    );
    let post = |extra: &str, body: &str| {
        let mut s = connect(&server);
        s.write_all(
            format!(
                "POST /console/sign-in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        read_all(&mut s)
    };
    for extra in [
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\n",
        "Origin: https://evil.example\r\n",
        "Origin: null\r\n",
        "",
    ] {
        let answer = post(extra, &form);
        assert!(answer.starts_with("HTTP/1.1 403"), "{extra:?}: {answer}");
        assert!(!answer.contains("openscm_console="), "no session: {answer}");
    }
    // From the console itself: signed in.
    for extra in ["Sec-Fetch-Site: same-origin\r\n", "Origin: http://x\r\n"] {
        let answer = post(extra, &form);
        assert!(answer.starts_with("HTTP/1.1 303"), "{extra:?}: {answer}");
        assert!(answer.contains("openscm_console="), "{answer}");
    }
    // No origin at all: the token of the sign-in page, with its cookie.
    let mut s = connect(&server);
    s.write_all(b"GET /console/sign-in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let page = read_all(&mut s);
    let cookie = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: openscm_console_login="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no form cookie: {page}"))
        .to_owned();
    let token = page
        .split("name=\"login_csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(cookie, token);
    let answer = post(
        &format!("Cookie: openscm_console_login={cookie}\r\n"),
        &format!("{form}&login_csrf={token}"),
    );
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let answer = post(
        &format!("Cookie: openscm_console_login={cookie}\r\n"),
        &format!("{form}&login_csrf=OSCM{}", "0".repeat(64)),
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}
