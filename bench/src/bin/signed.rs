//! Signed requests for the HTTP benchmark, made with `scm-sign` exactly as the SDK signs them.
//!
//! `signed CREDENTIALS_JSON send METHOD PATH [BODY]`  sends one request (HTTP/1.1 over loopback)
//!                                                    and prints the status line and body;
//! `signed CREDENTIALS_JSON wrk METHOD PATH`          prints a wrk Lua script replaying a request
//!                                                    signed now (valid for the 15-minute skew).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};

use scm_sign::SecretKey;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 5,
        "usage: signed CREDENTIALS_JSON (send|wrk) METHOD PATH [BODY]"
    );
    let creds: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&args[1])?)?;
    let field = |k: &str| {
        creds[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("{k} missing"))
    };
    let endpoint = field("endpoint")?;
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let (method, path) = (args[3].as_str(), args[4].as_str());
    let body = args.get(5).cloned().unwrap_or_default();
    let (path_only, query) = match path.split_once('?') {
        Some((p, q)) => (
            p,
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .collect::<Vec<_>>(),
        ),
        None => (path, Vec::new()),
    };
    let signed = scm_sign::sign(
        method,
        &host,
        path_only,
        &query,
        &[
            ("Content-Type", "application/json"),
            ("X-Project-Id", &field("project_id")?),
        ],
        body.as_bytes(),
        &field("access_key")?,
        &SecretKey::new(field("secret_key")?),
        time::OffsetDateTime::now_utc(),
    );
    match args[2].as_str() {
        "wrk" => {
            println!("wrk.method = {method:?}");
            println!("wrk.path = {:?}", signed.request_uri);
            for (k, v) in signed
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            {
                println!("wrk.headers[{k:?}] = {v:?}");
            }
        }
        "send" => {
            let mut s = std::net::TcpStream::connect(&host)?;
            let mut req = format!(
                "{method} {} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
                signed.request_uri,
                body.len()
            );
            for (k, v) in &signed.headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            req.push_str(&body);
            s.write_all(req.as_bytes())?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            let status = out.lines().next().unwrap_or("").to_owned();
            let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
            println!("{status}\n{body}");
            anyhow::ensure!(status.contains(" 20"), "request failed");
        }
        other => anyhow::bail!("unknown mode {other}"),
    }
    Ok(())
}
