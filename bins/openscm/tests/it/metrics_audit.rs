//! `/metrics` (who may read it; what it counts after known traffic; the store gauges and their
//! cache) and the audit log (what a sequence of calls, refusals and a key export leaves in it).

use std::sync::Arc;

use scm_client::{Client, Credentials, ListQuery};
use scm_core::{Clock, FixedClock};
use scm_proto::Operation;
use scm_store::AuditQuery;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::TestServer;
use crate::routes::{apply_body, buy_body, paid, request_id};

/// `GET /metrics` over a plain connection: (status, body).
pub(crate) async fn scrape(url: &str, bearer: Option<&str>) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    conn.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The value of the sample `name{labels}` exactly as written (`None`: no such sample).
pub(crate) fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A second listener on the same service whose `/metrics` follows `config`.
async fn serve_with(s: &TestServer, config: scm_api::MetricsConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = scm_api::router_with(
        s.scm.clone(),
        scm_api::ApiLimits::default(),
        Arc::new(scm_api::Metrics::new(config)),
    );
    tokio::spawn(scm_api::serve(
        listener,
        app,
        std::future::pending(),
        scm_api::ServeLimits::default(),
    ));
    url
}

#[tokio::test]
async fn metrics_are_read_from_allowed_addresses_or_with_the_token() {
    let s = TestServer::start().await;
    // Default: loopback.
    let (status, body) = scrape(&s.url, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sample(&body, "openscm_store_up"), Some(1.0));
    assert!(body.contains("openscm_build_info{version=\""), "{body}");
    // A token where none is configured is refused, even from loopback.
    assert_eq!(scrape(&s.url, Some("guess")).await.0, 401);

    // Loopback not in the list, no token configured: 403, no data.
    let far = serve_with(
        &s,
        scm_api::MetricsConfig {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            token: None,
        },
    )
    .await;
    let (status, body) = scrape(&far, None).await;
    assert_eq!(status, 403);
    assert!(!body.contains("openscm_"), "{body}");

    // Token only.
    let tokened = serve_with(
        &s,
        scm_api::MetricsConfig {
            allow: Vec::new(),
            token: scm_api::MetricsToken::new("t0ken-for-scrapes"),
        },
    )
    .await;
    let (status, body) = scrape(&tokened, None).await;
    assert_eq!(status, 403, "no token, address not allowed");
    assert!(!body.contains("openscm_"));
    let (status, body) = scrape(&tokened, Some("t0ken-for-scrape")).await;
    assert_eq!(status, 401, "wrong token");
    assert!(!body.contains("openscm_"));
    let (status, body) = scrape(&tokened, Some("t0ken-for-scrapes")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sample(&body, "openscm_store_up"), Some(1.0));
    s.stop().await;
}

#[tokio::test]
async fn metrics_count_known_traffic_and_the_store_gauges_are_cached() {
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    // Leaves valid 20 days: an issued certificate expires within 30 days, not within 7.
    let s = TestServer::start_custom(dyn_clock, |_, _, c| {
        c.leaf_validity = time::Duration::days(20);
    })
    .await;
    // Scrapes are not counted as requests, and need no credential.
    let (_, before) = scrape(&s.url, None).await;
    assert_eq!(
        sample(&before, "openscm_certificates{status=\"ISSUED\"}"),
        Some(0.0)
    );
    for _ in 0..3 {
        s.admin
            .list_certificates(&ListQuery::default())
            .await
            .unwrap();
    }
    let stranger = Client::new(
        &s.url,
        Credentials::new("NOSUCHKEY0000000000X", "x".repeat(40)),
    )
    .unwrap();
    assert!(
        stranger
            .list_certificates(&ListQuery::default())
            .await
            .is_err()
    );
    let id = paid(&s.admin).await;
    s.admin.apply(&id, &apply_body("m.test")).await.unwrap();
    s.admin.export(&id).await.unwrap();

    // The store gauges were read at the first scrape and are served for 15 s of the clock.
    let (status, body) = scrape(&s.url, None).await;
    assert_eq!(status, 200);
    let ok = |op: &str| format!("openscm_requests_total{{operation=\"{op}\",code=\"ok\"}}");
    assert_eq!(sample(&body, &ok("ListCertificates")), Some(3.0), "{body}");
    assert_eq!(sample(&body, &ok("SubscribeCertificate")), Some(1.0));
    assert_eq!(sample(&body, &ok("ApplyCertificate")), Some(1.0));
    assert_eq!(sample(&body, &ok("ExportCertificate")), Some(1.0));
    let refused = body
        .lines()
        .filter(|l| {
            l.starts_with("openscm_requests_total{operation=\"ListCertificates\",code=\"APIGW.")
        })
        .count();
    assert_eq!(refused, 1, "{body}");
    assert_eq!(
        sample(
            &body,
            "openscm_request_duration_seconds_count{operation=\"ListCertificates\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &body,
            "openscm_request_duration_seconds_bucket{operation=\"ListCertificates\",le=\"+Inf\"}"
        ),
        Some(4.0)
    );
    assert!(!body.contains(&id), "no per-certificate label");
    assert!(!body.contains(&s.domain_id), "no per-account label");
    assert_eq!(
        sample(&body, "openscm_certificates{status=\"ISSUED\"}"),
        Some(0.0),
        "cached"
    );

    clock.advance(time::Duration::seconds(16));
    let (_, body) = scrape(&s.url, None).await;
    assert_eq!(
        sample(&body, "openscm_certificates{status=\"ISSUED\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "openscm_certificates_expiring{within=\"7d\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&body, "openscm_certificates_expiring{within=\"30d\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, "openscm_push_attempts_total{outcome=\"failure\"}"),
        Some(0.0)
    );
    assert!(sample(&body, "openscm_store_ping_seconds").is_some());
    assert!(
        sample(
            &body,
            "openscm_serving_certificate_expiry_timestamp_seconds"
        )
        .is_none(),
        "no TLS here"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_audit_log_records_writes_refusals_and_exports_but_not_reads() {
    let s = TestServer::start().await;
    let bought = s.admin.subscribe(&buy_body()).await.unwrap();
    let id = bought.cert[0].cert_id.clone();
    s.admin.apply(&id, &apply_body("audit.test")).await.unwrap();
    s.admin
        .list_certificates(&ListQuery::default())
        .await
        .unwrap();
    s.admin.show(&id).await.unwrap();
    let export = s
        .admin
        .call(Operation::ExportCertificate, &[&id], &[], None)
        .await
        .unwrap();
    assert_eq!(export.status, 200);
    let export_request = request_id(&export);
    // Refused: a certificate that does not exist (authenticated: recorded with its code).
    let missing = "scs1000000000000";
    let refusal = s
        .admin
        .call(Operation::ExportCertificate, &[missing], &[], None)
        .await
        .unwrap();
    assert!(refusal.status >= 400);
    let refused_code = refusal.error().unwrap().error_code;
    // Unauthenticated: counted in the metrics, not recorded.
    let stranger = Client::new(
        &s.url,
        Credentials::new("NOSUCHKEY0000000000X", "x".repeat(40)),
    )
    .unwrap();
    assert!(stranger.delete_certificate(&id).await.is_err());

    let all = s
        .scm
        .audit_events(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let ops: Vec<&str> = all.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "ExportCertificate",
            "ExportCertificate",
            "ApplyCertificate",
            "SubscribeCertificate"
        ],
        "newest first, reads and unauthenticated calls left out"
    );
    let ak = s.admin.credentials().access_key.clone();
    for e in &all {
        assert_eq!(e.account.as_ref().unwrap().as_str(), s.domain_id);
        assert_eq!(e.credential.as_ref().unwrap().as_str(), ak);
        assert_eq!(e.source, "127.0.0.1");
        assert_eq!(e.request_id.len(), 32);
    }
    assert_eq!(all[0].outcome, refused_code);
    assert_eq!(all[0].targets, vec![missing.to_owned()]);
    assert_eq!(all[1].outcome, "ok");
    assert_eq!(all[1].status, 200);
    assert_eq!(all[1].request_id, export_request);
    assert_eq!(all[1].targets, vec![id.clone()]);
    // The purchase names the order and the certificate it created.
    assert_eq!(all[3].targets, vec![bought.order_id.clone(), id.clone()]);
    // Filters: by target and by operation.
    let by_target = s
        .scm
        .audit_events(&AuditQuery {
            target: Some(id.clone()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_target.len(), 3);
    let exports = s
        .scm
        .audit_events(&AuditQuery {
            operation: Some("ExportCertificate".into()),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(exports, all[..1].to_vec());
    s.stop().await;
}

/// The shipped alert rules load and their unit tests pass (`promtool`, Debian `prometheus`: the
/// test fails when it is missing).
#[test]
fn the_shipped_alert_rules_pass_promtool() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus");
    for args in [
        ["check", "rules", "openscm-alerts.yml"],
        ["test", "rules", "openscm-alerts.test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian package prometheus) is needed: scripts/test-all installs it");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
