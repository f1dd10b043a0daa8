//! Hardening benchmark, against the release server binary on loopback:
//!
//! 1. resident memory of the server with 1,000 slow unauthenticated connections open (each
//!    sending its request head one byte at a time), beside its idle memory;
//! 2. `/health` p99 latency on an open connection while the connection cap is full (and how fast
//!    a new connection is refused then), beside idle;
//! 3. authenticated buys per second with rate limiting and quotas on (limits set above the load,
//!    so only their cost shows) beside the same with them off; SQLite, or `--database-url`.
//!
//! `cargo run --release -p openscm-bench --bin hardening -- [--seconds N] [--database-url URL]
//!  [--server target/release/openscm]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openscm_bench::{Server, arg, health_latencies, p99};
use scm_proto::v3::PurchaseBody;

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
    let bin = PathBuf::from(arg("--server").unwrap_or_else(|| "target/release/openscm".into()));
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
        "[limits]\nmax_connections = 1100\n",
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
