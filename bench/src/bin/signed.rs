//! Signed requests for the HTTP benchmark, made with `scm-client` exactly as the SDK signs them.
//!
//! `signed CREDENTIALS_JSON send METHOD PATH [BODY]`  sends one request and prints the status line
//!                                                    and body (fails on a non-2xx answer);
//! `signed CREDENTIALS_JSON wrk METHOD PATH`          prints a wrk Lua script replaying a request
//!                                                    signed now (valid for the 15-minute skew).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use scm_client::{Client, RawRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 5,
        "usage: signed CREDENTIALS_JSON (send|wrk) METHOD PATH [BODY]"
    );
    let client = Client::from_credentials_file(&args[1])?;
    let (method, path) = (args[3].as_str(), args[4].as_str());
    let body = args.get(5).cloned().unwrap_or_default();
    let project = client.credentials().project_id.clone().unwrap_or_default();
    let req = RawRequest::new(method, path)
        .header("Content-Type", "application/json")
        .header("X-Project-Id", project)
        .body(body.into_bytes());
    match args[2].as_str() {
        "wrk" => {
            let prepared = client.prepare(&req);
            println!("wrk.method = {method:?}");
            println!("wrk.path = {:?}", prepared.target);
            for (k, v) in prepared
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            {
                println!("wrk.headers[{k:?}] = {v:?}");
            }
        }
        "send" => {
            let resp = client.send(req).await?;
            println!("HTTP/1.1 {}\n{}", resp.status, resp.text());
            anyhow::ensure!(resp.is_success(), "request failed");
        }
        other => anyhow::bail!("unknown mode {other}"),
    }
    Ok(())
}
