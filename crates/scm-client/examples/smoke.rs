//! A smoke run of the client against a running server: buy → apply → show → list → export, token
//! auth, the v2 flow (purchase, save, complete, push history), and a few refusals.
//!
//! ```sh
//! openscm server --listen 127.0.0.1:0 --data-dir /tmp/d      # prints the URL
//! cargo run -p scm-client --example smoke -- /tmp/d/credentials.json [ENDPOINT]
//! ```
//!
//! `ENDPOINT` defaults to the file's (the server's first start). With an nginx push target for
//! ELB in cn-north-4 on the account, the pushes are delivered and show in the history; without
//! one they are refused with `SCM.0030`. Prints one line per step and exits non-zero at the first
//! step that does not answer as expected.

use std::error::Error;
use std::fmt::Debug;

use scm_client::{Client, ClientError, CredentialsFile, ListQuery, RawRequest, Tamper};
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{Operation, v2, v3};
use time::{Duration, OffsetDateTime};

type Result<T = (), E = Box<dyn Error>> = std::result::Result<T, E>;

/// Fails with `what` unless `ok`.
fn ensure(ok: bool, what: impl Into<String>) -> Result {
    match ok {
        true => Ok(()),
        false => Err(what.into().into()),
    }
}

/// Checks that a call was refused with this status and code.
fn refused<T: Debug>(
    step: &str,
    result: Result<T, ClientError>,
    status: u16,
    code: &str,
) -> Result {
    match result {
        Err(ClientError::Api {
            status: s,
            code: c,
            message,
            request_id,
        }) if s == status && c == code => {
            ensure(
                request_id.as_ref().is_some_and(|id| id.len() == 32),
                format!("{step}: refusal without a 32-hex X-Request-Id"),
            )?;
            println!("ok   {step}: {status} {code} ({message})");
            Ok(())
        }
        other => Err(format!("{step}: expected {status} {code}, got {other:?}").into()),
    }
}

/// A one-year single-domain DV certificate, as in the README.
fn dv_order() -> PurchaseBody {
    PurchaseBody {
        cert_brand: Some("GLOBALSIGN".into()),
        cert_type: Some("DV_SSL_CERT".into()),
        domain_type: Some("SINGLE_DOMAIN".into()),
        effective_time: Some(1),
        domain_numbers: Some(1),
        order_number: Some(1),
        agree_privacy_protection: Some(true),
        ..PurchaseBody::default()
    }
}

/// The README's applicant.
fn application(domain: &str) -> ApplicationBody {
    ApplicationBody {
        domain: Some(domain.into()),
        applicant_name: Some("Tom Smith".into()),
        applicant_phone: Some("13212345678".into()),
        applicant_email: Some("tom@example.com".into()),
        agree_privacy_protection: Some(true),
        domain_method: Some("DNS".into()),
        key_algorithm: Some("EC_P256".into()),
        ..ApplicationBody::default()
    }
}

fn first_cert(order: &v3::PurchaseResponse) -> Result<String> {
    order
        .cert
        .first()
        .map(|c| c.cert_id.clone())
        .ok_or_else(|| "the order has no certificate".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "openscm-data/credentials.json".into());
    let file = CredentialsFile::load(&path)?;
    // The file names the endpoint of the server's first start; a restart on another port needs
    // the second argument.
    let endpoint = match std::env::args().nth(2) {
        Some(endpoint) => endpoint,
        None => file.endpoint.clone().ok_or("no endpoint in the file")?,
    };
    let domain_id = file.credentials.domain_id.clone().ok_or("no domain_id")?;
    let project = file.credentials.project_id.clone().ok_or("no project_id")?;
    let client = Client::builder(&endpoint, file.credentials)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;

    // -- unauthenticated and IAM
    let health = client.health().await?;
    ensure(health.status == "ok", format!("health: {health:?}"))?;
    println!("ok   health: {}", health.status);

    let domains = client.list_auth_domains().await?;
    ensure(
        domains.domains.iter().any(|d| d.id == domain_id),
        format!("auth domains: {domains:?}"),
    )?;
    println!("ok   auth domains: {}", domain_id);

    // -- v3: buy, apply, show, list, export
    let order = client.subscribe(&dv_order()).await?;
    let cert_id = first_cert(&order)?;
    println!("ok   buy: order {} certificate {cert_id}", order.order_id);
    let shown = client.show(&cert_id).await?;
    ensure(shown.status == "PAID", format!("bought: {}", shown.status))?;

    let applied = client
        .apply(&cert_id, &application("www.smoke.test"))
        .await?;
    ensure(applied.request_info == "success", "apply")?;
    let shown = client.show(&cert_id).await?;
    ensure(
        shown.status == "ISSUED" && shown.domain.as_deref() == Some("www.smoke.test"),
        format!("show: {} {:?}", shown.status, shown.domain),
    )?;
    println!(
        "ok   apply + show: {} {} until {}",
        shown.status,
        shown.signature_algorithm.as_deref().unwrap_or("?"),
        shown.not_after.as_deref().unwrap_or("?")
    );

    let listed = client
        .list_certificates(&ListQuery {
            status: Some("ISSUED".into()),
            content: Some("www.smoke.test".into()),
            limit: Some(10),
            ..ListQuery::default()
        })
        .await?;
    ensure(
        listed.certificates.iter().any(|c| c.id == cert_id),
        format!("list: {} found, not {cert_id}", listed.total_count),
    )?;
    println!("ok   list: {} certificate(s)", listed.total_count);

    let exported = client.export(&cert_id).await?;
    ensure(
        exported
            .entire_certificate
            .starts_with(&exported.certificate)
            && exported
                .certificate
                .starts_with("-----BEGIN CERTIFICATE-----")
            && exported
                .private_key
                .as_deref()
                .is_some_and(|k| k.starts_with("-----BEGIN PRIVATE KEY-----")),
        "export: certificate, chain and PKCS#8 key",
    )?;
    println!(
        "ok   export: {} bytes of chain, key held",
        exported.entire_certificate.len()
    );

    // -- token auth
    let token = client.create_token().await?;
    let with_token = client.with_token(token.token.clone());
    let shown = with_token.show(&cert_id).await?;
    ensure(shown.id == cert_id, "show with a token")?;
    println!(
        "ok   token: expires {}, show works with X-Auth-Token",
        token.body.token.expires_at
    );
    refused(
        "a token cannot mint a token",
        with_token.create_token().await,
        401,
        "APIGW.0301",
    )?;

    // -- v2: purchase, save, complete, push history
    let order = client
        .v2_purchase(
            &project,
            &PurchaseBody {
                cert_type: Some("OV_SSL_CERT".into()),
                ..dv_order()
            },
        )
        .await?;
    let v2_id = first_cert(&order)?;
    println!("ok   v2 purchase: {v2_id}");
    let form = ApplicationBody {
        domain: Some("v2.smoke.test".into()),
        company_name: Some("Smoke Ltd".into()),
        company_unit: Some("IT".into()),
        company_province: Some("Beijing".into()),
        company_city: Some("Beijing".into()),
        country: Some("CN".into()),
        applicant_name: Some("Tom Smith".into()),
        applicant_phone: Some("13212345678".into()),
        applicant_email: Some("tom@example.com".into()),
        contact_name: Some("Tom Smith".into()),
        contact_phone: Some("13212345678".into()),
        contact_email: Some("tom@example.com".into()),
        agree_privacy_protection: Some(true),
        ..ApplicationBody::default()
    };
    client.v2_save(&project, &v2_id, &form).await?;
    client.v2_complete(&project, &v2_id, None).await?;
    let shown = client.show(&v2_id).await?;
    ensure(
        shown.status == "ISSUED",
        format!("v2 complete: {}", shown.status),
    )?;
    println!("ok   v2 save + complete: {}", shown.status);
    let history = client.v2_push_history(&project, &v2_id).await?;
    ensure(history.push_history_list.is_empty(), "push history")?;
    println!(
        "ok   v2 push history: {} push(es)",
        history.push_history_list.len()
    );

    // -- refusals
    refused(
        "unknown certificate",
        client.show("scs9999999999999").await,
        404,
        "SCM.0020",
    )?;
    refused(
        "malformed certificate id",
        client.show("nope").await,
        400,
        "SCM.0008",
    )?;
    let body = serde_json::to_vec(&application("www.smoke.test"))?;
    let tampered = client
        .request(Operation::ApplyCertificate, &[&cert_id], &[], Some(&body))
        .tamper(Tamper::Body(b"{\"domain\":\"evil.test\"}".to_vec()));
    refused(
        "body changed after signing",
        client.send(tampered).await?.check(),
        401,
        "APIGW.0301",
    )?;
    let stale = client
        .request(Operation::ShowCertificate, &[&cert_id], &[], None)
        .signed_at(OffsetDateTime::now_utc() - Duration::minutes(20));
    refused(
        "signed 20 minutes ago",
        client.send(stale).await?.check(),
        401,
        "APIGW.0301",
    )?;
    refused(
        "unsigned",
        client
            .send(
                client
                    .request(Operation::ListCertificates, &[], &[], None)
                    .unauthenticated(),
            )
            .await?
            .check(),
        401,
        "APIGW.0301",
    )?;
    let doubled = client
        .request(Operation::ShowCertificate, &[&cert_id], &[], None)
        .tamper(Tamper::AddHeader(
            "X-Sdk-Date".into(),
            "20240102T030405Z".into(),
        ));
    refused(
        "X-Sdk-Date twice",
        client.send(doubled).await?.check(),
        401,
        "APIGW.0301",
    )?;
    // A raw target goes out as written (unsorted, `1%30` for `10`); the signature covers what the
    // server canonicalises from it. (`limit` must be 10..50.)
    let raw = RawRequest::new(
        "GET",
        "/v3/scm/certificates?status=ISSUED&limit=1%30&content=smoke",
    )
    .header("Content-Type", "application/json");
    let listed: v3::ListCertificatesResponse = client.send(raw).await?.into_json()?;
    ensure(
        listed.certificates.len() <= 10,
        format!("raw list: {} certificates", listed.certificates.len()),
    )?;
    println!(
        "ok   raw signed target: {} of {}",
        listed.certificates.len(),
        listed.total_count
    );
    refused(
        "unknown route",
        client
            .send(RawRequest::new("GET", "/v3/scm/nothing-here"))
            .await?
            .check(),
        404,
        "APIGW.0101",
    )?;
    refused(
        "wrong method",
        client
            .send(RawRequest {
                method: "DELETE".into(),
                ..client.request(Operation::ShowCertificate, &[&cert_id], &[], None)
            })
            .await?
            .check(),
        405,
        "APIGW.0105",
    )?;
    refused(
        "order_number of the wrong type",
        client
            .call(
                Operation::SubscribeCertificate,
                &[],
                &[],
                Some(br#"{"order_number": "one"}"#),
            )
            .await?
            .check(),
        400,
        "SCM.0005",
    )?;
    refused(
        "not JSON",
        client
            .send(RawRequest {
                body: b"{".to_vec(),
                ..client.request(Operation::SubscribeCertificate, &[], &[], None)
            })
            .await?
            .check(),
        400,
        "SCM.0005",
    )?;
    // -- push: delivered when the server has an ELB target for cn-north-4 and this account
    // (`[[push_targets]]`), refused with SCM.0030 otherwise.
    let pushed = client
        .push(
            &cert_id,
            &v3::PushBody {
                target_project: Some("cn-north-4".into()),
                target_service: Some("ELB".into()),
            },
        )
        .await;
    match pushed {
        Err(ClientError::Api { code, .. }) if code == "SCM.0030" => {
            println!("ok   push: 400 SCM.0030, no ELB target configured");
            refused(
                "v2 push without a target",
                client
                    .v2_push(
                        &project,
                        &v2_id,
                        &v2::PushBody {
                            service_type: Some("ELB".into()),
                            remote_project: Some("cn-north-4".into()),
                        },
                    )
                    .await,
                400,
                "SCM.0030",
            )?;
        }
        other => {
            other?;
            let answer = client
                .v2_push(
                    &project,
                    &cert_id,
                    &v2::PushBody {
                        service_type: Some("ELB".into()),
                        remote_project: Some("cn-north-4".into()),
                    },
                )
                .await?;
            ensure(answer.message == "success", "v2 push")?;
            let history = client.v2_push_history(&project, &cert_id).await?;
            ensure(
                history.push_history_list.len() == 2,
                format!("push history: {:?}", history.push_history_list),
            )?;
            println!(
                "ok   push (204) + v2 push: {} pushes in the history",
                history.push_history_list.len()
            );
        }
    }
    refused(
        "apply twice",
        client.apply(&cert_id, &application("www.smoke.test")).await,
        400,
        "SCM.0010",
    )?;

    println!("smoke: all steps passed against {endpoint}");
    Ok(())
}
