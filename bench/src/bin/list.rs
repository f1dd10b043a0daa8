//! List benchmark: `ListCertificates` latency with 100,000 certificates in one account, through
//! the release server on loopback (signed requests, one at a time), for the queries users make:
//! the first page, a deep page, a status filter, a sort, and a search by name or domain, and
//! `ShowCertificate`. Each p99 (sequential requests) and rate (8 concurrent clients) is printed
//! beside the 20 ms ceiling and beside `/health` on the same connection pool (the
//! floor of a round trip in this run). Beside each list query, the web console's inventory page
//! for the same query (`GET /console/certificates?…`, signed in, the whole HTML page read) is
//! timed too: its p99 over the same number of sequential requests on one keep-alive connection.
//!
//! `cargo run --release -p openscm-bench --bin list -- [--certificates N] [--issued N]
//!  [--requests N | --seconds S] [--database-url URL] [--server PATH (default: the openscm beside this binary)]`
//!
//! `--seconds S` sizes the measuring part (after the seeding, which the first lines time) to about
//! S seconds: each query's request count is what fits in its share, from a 10-request sample.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use openscm_bench::{Server, arg, health_latencies, p99};
use scm_client::{Client, ListQuery};
use scm_proto::v3::{ApplicationBody, PurchaseBody};

/// The ceiling the issue sets for a list request at 100k certificates.
const CEILING: Duration = Duration::from_millis(20);

fn purchase(n: i64) -> PurchaseBody {
    PurchaseBody {
        cert_brand: Some("GLOBALSIGN".into()),
        cert_type: Some("DV_SSL_CERT".into()),
        domain_type: Some("SINGLE_DOMAIN".into()),
        effective_time: Some(1),
        domain_numbers: Some(1),
        order_number: Some(n),
        agree_privacy_protection: Some(true),
        ..PurchaseBody::default()
    }
}

/// A P-256 CSR for `domain` (the names of a CSR must be the application's).
fn csr_pem(domain: &str) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![domain.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// Runs `job(i)` for every `i` in `0..n`, 8 at a time (like 8 concurrent clients); returns
/// the results in index order.
async fn in_parallel<T, F, Fut>(n: usize, job: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (job, next) = (job.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break done;
                }
                done.push((i, job(i).await));
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Buys `n` certificates, 100 an order; returns their ids.
async fn seed(client: &Client, n: usize) -> Vec<String> {
    let client = client.clone();
    let orders = in_parallel(n.div_ceil(100), move |_| {
        let client = client.clone();
        async move { client.subscribe(&purchase(100)).await.unwrap() }
    })
    .await;
    let mut ids: Vec<String> = orders
        .into_iter()
        .flat_map(|o| o.cert.into_iter().map(|c| c.cert_id))
        .collect();
    ids.truncate(n);
    ids
}

/// Issues the given certificates, the `i`-th for `host-<i>.list.test`.
async fn issue(client: &Client, ids: &[String]) {
    let (client, ids) = (client.clone(), Arc::new(ids.to_vec()));
    in_parallel(ids.len(), move |i| {
        let (client, ids) = (client.clone(), ids.clone());
        async move {
            let domain = format!("host-{i}.list.test");
            let csr = csr_pem(&domain);
            let body: ApplicationBody = serde_json::from_value(serde_json::json!({
                "domain": domain, "applicant_name": "Bench Mark",
                "applicant_phone": "13212345678", "applicant_email": "bench@example.com",
                "agree_privacy_protection": true, "domain_method": "DNS",
                "key_algorithm": "EC_P256", "csr": csr
            }))
            .unwrap();
            client.apply(&ids[i], &body).await.unwrap();
        }
    })
    .await;
}

/// Sorted latencies of `n` sequential list requests.
async fn latencies(client: &Client, query: &ListQuery, n: usize) -> (Vec<Duration>, u64) {
    let mut out = Vec::with_capacity(n);
    let mut total = 0;
    for _ in 0..n {
        let started = Instant::now();
        let page = client.list_certificates(query).await.unwrap();
        out.push(started.elapsed());
        total = page.total_count;
    }
    out.sort();
    (out, total)
}

/// Requests per second of `n` list requests from 8 concurrent clients.
async fn list_rate(client: &Client, query: &ListQuery, n: usize) -> f64 {
    let (client, query) = (client.clone(), Arc::new(query.clone()));
    let started = Instant::now();
    in_parallel(n, move |_| {
        let (client, query) = (client.clone(), query.clone());
        async move {
            client.list_certificates(&query).await.unwrap();
        }
    })
    .await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// Sorted latencies of `n` sequential show requests, and the rate of `n` from 8 concurrent
/// clients.
async fn show_figures(client: &Client, id: &str, n: usize) -> (Vec<Duration>, f64) {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        client.show(id).await.unwrap();
        out.push(started.elapsed());
    }
    out.sort();
    let (c, id) = (client.clone(), Arc::new(id.to_owned()));
    let started = Instant::now();
    in_parallel(n, move |_| {
        let (c, id) = (c.clone(), id.clone());
        async move {
            c.show(&id).await.unwrap();
        }
    })
    .await;
    (out, n as f64 / started.elapsed().as_secs_f64())
}

/// One HTTP/1.1 exchange on a keep-alive connection: the status, the head and the body (read to
/// its Content-Length).
fn http(s: &mut TcpStream, request: &str) -> (u16, String, Vec<u8>) {
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, head, buf[head_end..head_end + len].to_vec())
}

/// Percent-encodes a query value.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Signs in to the web console with the bootstrap credential; returns the session cookie.
fn console_sign_in(port: u16, data: &std::path::Path) -> String {
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("credentials.json")).unwrap()).unwrap();
    let body = format!(
        "access_key={}&secret_key={}",
        enc(creds["access_key"].as_str().unwrap()),
        enc(creds["secret_key"].as_str().unwrap())
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (status, head, _) = http(
        &mut s,
        &format!(
            "POST /console/sign-in HTTP/1.1\r\nHost: x\r\nOrigin: http://x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 303, "console sign-in: {head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// Sorted latencies of `n` sequential console inventory pages for `query`, and the total the
/// page shows (from its caption).
fn console_latencies(
    port: u16,
    cookie: &str,
    query: &ListQuery,
    n: usize,
) -> (Vec<Duration>, String) {
    // A new connection per query: the server closes one left idle (its header timeout) while
    // the JSON figures of the previous query were taken.
    let s = &mut TcpStream::connect(("127.0.0.1", port)).unwrap();
    let qs: Vec<String> = query
        .pairs()
        .into_iter()
        .map(|(k, v)| format!("{k}={}", enc(&v)))
        .collect();
    let request = format!(
        "GET /console/certificates?{} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n",
        qs.join("&")
    );
    let mut out = Vec::with_capacity(n);
    let mut caption = String::new();
    for _ in 0..n {
        let started = Instant::now();
        let (status, _, body) = http(s, &request);
        out.push(started.elapsed());
        assert_eq!(status, 200);
        let page = String::from_utf8_lossy(&body);
        caption = page
            .split("<caption>")
            .nth(1)
            .and_then(|c| c.split("</caption>").next())
            .unwrap_or("")
            .to_owned();
    }
    out.sort();
    (out, caption)
}

#[tokio::main]
async fn main() {
    let certificates: usize = arg("--certificates")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let issued: usize = arg("--issued")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
        .min(certificates);
    let requests: usize = arg("--requests")
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let seconds: Option<f64> = arg("--seconds").and_then(|s| s.parse().ok());
    let bin = openscm_bench::server_bin();
    let db = arg("--database-url");
    let root = std::env::temp_dir().join(format!("openscm-list-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let toml = format!(
        "[limits]\nrate_limit_per_second = 0\n[quotas]\ncertificates_per_account = {}\n\
         orders_per_day = 10000000\n",
        certificates + 1000
    );
    let server = Server::start(&bin, &root.join("data"), db.as_deref(), &toml);
    let client = server.client();
    let per_query = match seconds {
        Some(s) => format!("about {s} s of sequential signed requests in all"),
        None => format!("{requests} sequential signed requests per query"),
    };
    println!(
        "OpenSCM list benchmark: ListCertificates and console latency, {certificates} certificates \
         ({issued} issued) in one account, store {}, {per_query}; machine: {}",
        if db.is_some() { "PostgreSQL" } else { "SQLite" },
        openscm_bench::machine()
    );

    let started = Instant::now();
    let ids = seed(&client, certificates).await;
    issue(&client, &ids[..issued]).await;
    println!("  seeded in {:.1} s", started.elapsed().as_secs_f64());
    // A store that has held 100,000 certificates for a while has been vacuumed and analysed
    // by autovacuum; right after a bulk load it has not (stale statistics, no visibility map):
    // do now what autovacuum does within a minute or so.
    if let Some(url) = db.as_deref() {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql("VACUUM ANALYZE certificates")
            .execute(&mut conn)
            .await
            .unwrap();
        println!("  PostgreSQL: VACUUM ANALYZE certificates done");
    }

    // The floor: an unauthenticated round trip to the same server.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let http = health_latencies(&mut conn, requests);
    println!(
        "  floor: GET /health p99                                      {:>8.3} ms",
        p99(&http).as_secs_f64() * 1e3
    );

    let q = |f: &dyn Fn(&mut ListQuery)| {
        let mut q = ListQuery {
            limit: Some(10),
            ..ListQuery::default()
        };
        f(&mut q);
        q
    };
    let cases: Vec<(&str, ListQuery)> = vec![
        ("first page (limit 10)", q(&|_| {})),
        (
            "page 50 (limit 50, offset 2450)",
            q(&|q| {
                q.limit = Some(50);
                q.offset = Some(2450);
            }),
        ),
        ("deep page (offset 90000)", q(&|q| q.offset = Some(90_000))),
        ("status=ISSUED", q(&|q| q.status = Some("ISSUED".into()))),
        (
            "sort by expiry, ASC",
            q(&|q| {
                q.sort_key = Some("certExpiredTime".into());
                q.sort_dir = Some("ASC".into());
            }),
        ),
        (
            "search content=host-1999",
            q(&|q| q.content = Some("host-1999".into())),
        ),
        (
            "search content=HOST-1 (case)",
            q(&|q| q.content = Some("HOST-1".into())),
        ),
        (
            "search content=nothing-matches",
            q(&|q| q.content = Some("nothing-matches".into())),
        ),
    ];
    let cookie = console_sign_in(server.port, &root.join("data"));
    // Each query's share of --seconds: three measurements per query, and the show at the end.
    let share = seconds.map(|s| s / (3 * cases.len() + 2) as f64);
    let count_for = |sample: &[Duration]| match share {
        Some(share) => {
            let each = sample.iter().sum::<Duration>().as_secs_f64() / sample.len().max(1) as f64;
            ((share / each.max(1e-6)) as usize).clamp(10, 1_000_000)
        }
        None => requests,
    };
    let mut met = true;
    for (name, query) in &cases {
        let requests = count_for(&latencies(&client, query, 10).await.0);
        let (lat, total) = latencies(&client, query, requests).await;
        let (page_lat, caption) = console_latencies(server.port, &cookie, query, requests);
        let rate = list_rate(&client, query, requests).await;
        let p = p99(&lat);
        met &= p <= CEILING;
        println!(
            "  {name:<34} total {total:>7}   p50 {:>7.3} ms   p99 {:>7.3} ms   {rate:>6.0} req/s (8 clients)   ceiling {} ms: {}",
            lat[lat.len() / 2].as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            CEILING.as_millis(),
            if p <= CEILING { "met" } else { "NOT MET" }
        );
        println!(
            "    console page, same query      ({caption})   p50 {:>7.3} ms   p99 {:>7.3} ms   (JSON p99 {:>7.3} ms)",
            page_lat[page_lat.len() / 2].as_secs_f64() * 1e3,
            p99(&page_lat).as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
        );
    }
    let requests = count_for(&show_figures(&client, &ids[0], 10).await.0);
    let (lat, rate) = show_figures(&client, &ids[0], requests).await;
    let p = p99(&lat);
    met &= p <= CEILING;
    println!(
        "  {:<34} {:>13}   p50 {:>7.3} ms   p99 {:>7.3} ms   {rate:>6.0} req/s (8 clients)   ceiling {} ms: {}",
        "show (an issued certificate)",
        "",
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3,
        CEILING.as_millis(),
        if p <= CEILING { "met" } else { "NOT MET" }
    );
    println!(
        "  all queries within the ceiling: {}",
        if met { "yes" } else { "NO" }
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}
