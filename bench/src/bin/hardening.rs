//! Hardening benchmark, against the release server binary on loopback:
//!
//! 1. resident memory of the server with 1,000 slow unauthenticated connections open (each
//!    sending its request head one byte at a time), beside its idle memory;
//! 2. `/health` p99 latency on an open connection while the connection cap is full (and how fast
//!    a new connection is refused then), beside idle;
//! 3. authenticated buys per second with rate limiting and quotas on (limits set above the load,
//!    so only their cost shows) beside the same with them off; SQLite, or `--database-url`;
//! 4. resident memory with 1,000 unauthenticated 1 MiB uploads to the console's form routes
//!    (sign-in, sign-out, export), beside idle;
//! 5. `/health` p99 for another address (a new connection each) while one address holds its
//!    whole share of connections (`max_connections_per_address`), beside the same unloaded.
//!
//! `cargo run --release -p openscm-bench --bin hardening -- [--seconds N] [--database-url URL]
//!  [--server PATH (default: the openscm beside this binary)]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openscm_bench::{Server, arg, health_latencies, p99};
use scm_proto::v3::PurchaseBody;

/// A blocking connection to the server from the loopback address `source` (std cannot bind
/// before connecting; tokio's socket can).
async fn connect_from(source: &str, port: u16) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse().unwrap())?;
    let stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await?
        .into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `n` latencies of `GET /health` from `source`, each on a new connection (what a client arriving
/// while others hold connections sees).
async fn fresh_health(source: &str, port: u16, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let mut s = connect_from(source, port).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "/health was not answered"
        );
        out.push(started.elapsed());
    }
    out.sort();
    out
}

/// `n` connections that send a request head one byte at a time (one byte each `every`).
fn slow_heads(port: u16, n: usize, every: Duration) -> Vec<std::thread::JoinHandle<()>> {
    let stop = Instant::now() + every * 40;
    (0..n)
        .map(|i| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    let head = format!(
                        "POST /v3/scm/certificates/buy HTTP/1.1\r\nHost: x{i}\r\nContent-Length: 1048576\r\n"
                    );
                    for b in head.bytes().cycle() {
                        if Instant::now() > stop || s.write_all(&[b]).is_err() {
                            return;
                        }
                        std::thread::sleep(every);
                    }
                })
                .unwrap()
        })
        .collect()
}

/// Buys per second by `tasks` concurrent clients for `seconds`.
async fn buy_rate(server: &Server, seconds: f64, tasks: usize) -> f64 {
    let client = server.client();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let body = PurchaseBody {
        cert_brand: Some("GLOBALSIGN".into()),
        cert_type: Some("DV_SSL_CERT".into()),
        domain_type: Some("SINGLE_DOMAIN".into()),
        effective_time: Some(1),
        domain_numbers: Some(1),
        order_number: Some(1),
        agree_privacy_protection: Some(true),
        ..PurchaseBody::default()
    };
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (client, done, body) = (client.clone(), done.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                client.subscribe(&body).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let bin = openscm_bench::server_bin();
    let db = arg("--database-url");
    let root = std::env::temp_dir().join(format!("openscm-hardening-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "OpenSCM hardening benchmark: memory under slow unauthenticated connections, and \
         authenticated buys per second with the rate limit and quotas on and off, server and load \
         on loopback; machine: {}",
        openscm_bench::machine()
    );

    // 1. Memory with 1,000 slow unauthenticated connections.
    let server = Server::start(
        &bin,
        &root.join("mem/data"),
        None,
        // All from one address: room for them (5. measures the per-address share).
        "[limits]\nmax_connections = 1100\nmax_connections_per_address = 1100\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    let idle = server.rss_mib();
    let slow = slow_heads(server.port, 1000, Duration::from_millis(500));
    std::thread::sleep(Duration::from_secs(5));
    let loaded = server.rss_mib();
    println!(
        "  resident memory, idle                                   {idle:>8.1} MiB\n  \
         resident memory, 1000 slow unauthenticated connections  {loaded:>8.1} MiB   (+{:.1} MiB, {:.1} KiB each)",
        loaded - idle,
        (loaded - idle) * 1024.0 / 1000.0
    );
    drop(server);
    for t in slow {
        let _ = t.join();
    }

    // 2. /health with the connection cap full.
    let cap = 200;
    let server = Server::start(
        &bin,
        &root.join("cap/data"),
        None,
        &format!("[limits]\nmax_connections = {cap}\n"),
    );
    let mut checker = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    checker.set_nodelay(true).unwrap();
    let quiet = health_latencies(&mut checker, 2000);
    let slow = slow_heads(server.port, cap + 100, Duration::from_millis(500));
    std::thread::sleep(Duration::from_secs(2));
    let full = health_latencies(&mut checker, 2000);
    let mut refusals = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 503"),
            "a connection past the cap was not refused"
        );
        refusals.push(started.elapsed());
    }
    refusals.sort();
    println!(
        "  /health p99 on an open connection, idle                 {:>8.3} ms\n  \
         /health p99 on an open connection, cap ({cap}) full       {:>8.3} ms\n  \
         refusal of a new connection past the cap, p99           {:>8.3} ms",
        p99(&quiet).as_secs_f64() * 1e3,
        p99(&full).as_secs_f64() * 1e3,
        p99(&refusals).as_secs_f64() * 1e3
    );
    drop(server);
    for t in slow {
        let _ = t.join();
    }

    // 4. Memory with 1,000 unauthenticated 1 MiB uploads to the console's forms, from four
    // addresses (room for all of them under the per-address share).
    let server = Server::start(&bin, &root.join("console/data"), None, "");
    std::thread::sleep(Duration::from_millis(500));
    let idle = server.rss_mib();
    let mut peak = idle;
    let routes = [
        "/console/sign-in",
        "/console/sign-out",
        "/console/certificates/scs1700000000000/export",
    ];
    let mut held = Vec::new();
    for i in 0..1000 {
        let Ok(mut s) = connect_from(&format!("127.0.0.{}", 2 + i % 4), server.port).await else {
            continue;
        };
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 1048576\r\n\r\n",
            routes[i % routes.len()]
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(&[b'x'; 16 * 1024]);
        held.push(s);
        if i % 100 == 0 {
            peak = peak.max(server.rss_mib());
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    peak = peak.max(server.rss_mib());
    println!(
        "  resident memory, idle                                   {idle:>8.1} MiB\n  \
         resident memory, 1000 unauthenticated console uploads   {peak:>8.1} MiB   (+{:.1} MiB)",
        peak - idle
    );
    drop(held);
    drop(server);

    // 5. /health for others while one address holds its share.
    let share = 256;
    let server = Server::start(&bin, &root.join("share/data"), None, "");
    let quiet = fresh_health("127.0.0.3", server.port, 500).await;
    let mut hog = Vec::new();
    for _ in 0..share + 44 {
        if let Ok(mut s) = connect_from("127.0.0.9", server.port).await {
            // One byte: past the first-byte deadline, held until the header timeout.
            let _ = s.write_all(b"G");
            hog.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let loaded = fresh_health("127.0.0.3", server.port, 500).await;
    println!(
        "  /health p99 from another address, new connections, idle      {:>8.3} ms\n  \
         ... while one address holds its share ({share})               {:>8.3} ms   ceiling 100 ms",
        p99(&quiet).as_secs_f64() * 1e3,
        p99(&loaded).as_secs_f64() * 1e3
    );
    drop(hog);
    drop(server);

    // 3. Buys with limits on (above the load) and off, alternately, twice each: the buys are
    // bound by durable commits, whose cost drifts on a shared machine, so the mean of each mode
    // is compared.
    let backend = if db.is_some() { "PostgreSQL" } else { "SQLite" };
    let quotas = "[quotas]\ncertificates_per_account = 100000000\norders_per_day = 10000000\n";
    let modes = [
        (
            "on",
            format!(
                "[limits]\nrate_limit_per_second = 1000000\nrate_limit_burst = 1000000\n{quotas}"
            ),
        ),
        (
            "off",
            format!("[limits]\nrate_limit_per_second = 0\n{quotas}"),
        ),
    ];
    let mut sums = [0.0f64; 2];
    for round in 0..4 {
        let m = round % 2;
        let (name, toml) = &modes[m];
        let data = root.join(format!("buy-{round}/data"));
        let url = db.as_ref().map(|base| {
            let dbname = format!("scm_hb_{round}_{}", std::process::id());
            let (head, rest) = base.split_once("://").unwrap();
            let host = rest.split('/').next().unwrap();
            let admin_url = format!("{head}://{host}/postgres");
            Command::new("psql")
                .arg(&admin_url)
                .arg("-qc")
                .arg(format!("CREATE DATABASE {dbname}"))
                .status()
                .unwrap();
            (
                admin_url,
                dbname.clone(),
                format!("{head}://{host}/{dbname}"),
            )
        });
        let server = Server::start(&bin, &data, url.as_ref().map(|u| u.2.as_str()), toml);
        let rate = buy_rate(&server, seconds, 16).await;
        drop(server);
        if let Some((admin_url, dbname, _)) = url {
            Command::new("psql")
                .arg(&admin_url)
                .arg("-qc")
                .arg(format!("DROP DATABASE {dbname} WITH (FORCE)"))
                .status()
                .unwrap();
        }
        sums[m] += rate;
        println!(
            "  authenticated buys/s, {backend}, rate limit and quotas {name:<3} {rate:>8.0} /s"
        );
    }
    let (on, off) = (sums[0] / 2.0, sums[1] / 2.0);
    println!(
        "  with limits on: {on:.0}/s = {:.1}% of {off:.0}/s without   target >= 90%: {}",
        100.0 * on / off,
        if on >= 0.9 * off { "met" } else { "NOT MET" }
    );
    let _ = std::fs::remove_dir_all(&root);
}
