"""Metrics and the audit log, once per storage backend (sqlite, postgres), driven with the official
SDK against the real binary:

- known traffic (3 ListCertificates, 1 unauthenticated call, buy + apply, export, a refused export)
  then /metrics parsed with prometheus_client's parser and the counters and gauges checked;
- /metrics refused (403 / 401, no data) from an address not allowed, and read with the token;
- the audit log after the same sequence, through `openscm admin audit --output json` and its
  filters;
- `promtool check rules` on the shipped alert rules.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
    ListCertificatesRequest,
    PurchaseCertificateRequestBody,
    ScmClient,
    SubscribeCertificateRequest,
)
from prometheus_client.parser import text_string_to_metric_families

from e2e_helpers import APIGW_AUTH_CODE, HEX32, require_tool

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus"


def samples(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed, name, **labels):
    return parsed.get((name, frozenset(labels.items())))


def buy_and_apply(client, domain):
    order = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True)))
    cert_id = order.cert[0].cert_id
    client.apply_certificate(ApplyCertificateRequest(certificate_id=cert_id, body=ApplyCertificateRequestBody(
        domain=domain, applicant_name="Tom Smith", applicant_phone="13212345678",
        applicant_email="tom@example.com", agree_privacy_protection=True, domain_method="DNS",
        key_algorithm="EC_P256")))
    return order.order_id, cert_id


@pytest.fixture(scope="module")
def traffic(servers):
    """A server with the known traffic done; returns (server, what was done)."""
    server = servers.new("metrics").start()
    client = server.sdk_client()
    for _ in range(3):
        client.list_certificates(ListCertificatesRequest())
    creds = server.credentials
    stranger = (ScmClient.new_builder()
                .with_credentials(GlobalCredentials("NOSUCHKEY0000000000X", "x" * 40, creds["domain_id"]))
                .with_endpoints([server.url]).build())
    with pytest.raises(ClientRequestException) as unauthenticated:
        stranger.list_certificates(ListCertificatesRequest())
    assert unauthenticated.value.status_code == 401
    order_id, cert_id = buy_and_apply(client, "metrics.e2e.test")
    exported = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    assert "PRIVATE KEY" in exported.private_key
    missing = "scs1000000000000"
    with pytest.raises(ClientRequestException) as refused:
        client.export_certificate(ExportCertificateRequest(certificate_id=missing))
    return server, {
        "order_id": order_id,
        "cert_id": cert_id,
        "missing": missing,
        "refused_code": refused.value.error_code,
        "auth_code": unauthenticated.value.error_code,
    }


def test_metrics_after_known_traffic(traffic):
    server, done = traffic
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    parsed = samples(r.text)

    def ok(op):
        return value(parsed, "openscm_requests_total", operation=op, code="ok")

    assert ok("ListCertificates") == 3
    assert ok("SubscribeCertificate") == 1
    assert ok("ApplyCertificate") == 1
    assert ok("ExportCertificate") == 1
    assert APIGW_AUTH_CODE.match(done["auth_code"]), done
    assert value(parsed, "openscm_requests_total", operation="ListCertificates", code=done["auth_code"]) == 1
    assert value(parsed, "openscm_requests_total", operation="ExportCertificate", code=done["refused_code"]) == 1
    assert value(parsed, "openscm_request_duration_seconds_count", operation="ListCertificates") == 4
    assert value(parsed, "openscm_request_duration_seconds_bucket", operation="ExportCertificate", le="+Inf") == 2
    # Scrapes are not API requests.
    assert not any(n == "openscm_requests_total" and dict(l).get("operation") == "Unknown"
                   for (n, l) in parsed)

    assert value(parsed, "openscm_certificates", status="ISSUED") == 1
    assert value(parsed, "openscm_certificates", status="PAID") == 0
    # Default validity 365 days: nothing expires within 30 days.
    assert value(parsed, "openscm_certificates_expiring", within="7d") == 0
    assert value(parsed, "openscm_certificates_expiring", within="30d") == 0
    assert value(parsed, "openscm_push_attempts_total", outcome="success") == 0
    assert value(parsed, "openscm_store_up") == 1
    assert value(parsed, "openscm_store_ping_seconds") >= 0
    assert any(n == "openscm_build_info" for (n, _) in parsed)
    assert any(n == "openscm_cache_entries" for (n, _) in parsed)
    # One access key signed every call: its first lookup missed, the later ones were answered
    # from memory.
    hits = value(parsed, "openscm_cache_lookups_total", cache="credentials", result="hit")
    misses = value(parsed, "openscm_cache_lookups_total", cache="credentials", result="miss")
    assert misses >= 1 and hits >= 5, (hits, misses)
    assert value(parsed, "openscm_jobs", state="failed") == 0
    # Bounded labels: no certificate, order or account in any label.
    for (_, labels) in parsed:
        for _, v in labels:
            assert v not in (done["cert_id"], done["order_id"], server.credentials["domain_id"])


def test_the_audit_log_after_the_sequence(traffic):
    server, done = traffic
    proc = server.admin("audit", "--output", "json", parse=False)
    events = json.loads(proc.stdout)
    creds = server.credentials
    assert [e["operation"] for e in events] == [
        "ExportCertificate", "ExportCertificate", "ApplyCertificate", "SubscribeCertificate",
    ], events
    for e in events:
        assert e["account"] == creds["domain_id"]
        assert e["credential"] == creds["access_key"]
        assert e["source"] == "127.0.0.1"
        assert HEX32.match(e["request_id"]), e
        assert e["time"].endswith("Z"), e
    refused, exported, applied, bought = events
    assert refused["outcome"] == done["refused_code"] and refused["status"] >= 400
    assert refused["targets"] == [done["missing"]]
    assert exported["outcome"] == "ok" and exported["targets"] == [done["cert_id"]]
    assert applied["outcome"] == "ok" and applied["targets"] == [done["cert_id"]]
    assert bought["targets"] == [done["order_id"], done["cert_id"]]

    def audit(*args):
        p = server.admin("audit", "--output", "json", *args, parse=False)
        return json.loads(p.stdout)

    assert [e["operation"] for e in audit("--target", done["cert_id"])] == [
        "ExportCertificate", "ApplyCertificate", "SubscribeCertificate"]
    assert audit("--operation", "ExportCertificate", "--limit", "1") == [refused]
    assert audit("--account", creds["domain_id"], "--since", bought["time"]) == events
    assert audit("--until", bought["time"]) == []
    assert audit("--account", "0" * 32) == []
    # The table names the columns and every event.
    table = server.admin("audit", parse=False).stdout.splitlines()
    assert table[0].split()[:4] == ["TIME", "ACCOUNT", "CREDENTIAL", "OPERATION"], table
    assert len(table) == 1 + len(events)
    # Bad filters are refused with a reason.
    bad = server.admin("audit", "--operation", "Nope", check=False, parse=False)
    assert bad.returncode != 0 and "ExportCertificate" in bad.stderr
    bad = server.admin("audit", "--since", "yesterday", check=False, parse=False)
    assert bad.returncode != 0 and "RFC 3339" in bad.stderr


def test_metrics_access_by_address_and_token(servers, tmp_path):
    token = "scrape-token-0123456789"
    token_file = tmp_path / "metrics.token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    server = servers.new("metrics-token", config_text=(
        "[metrics]\n"
        'allow = ["10.0.0.0/8"]\n'
        f'token_file = "{token_file}"\n'
    )).start()
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 403 and "openscm_" not in r.text
    r = requests.get(server.url + "/metrics", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 401 and "openscm_" not in r.text
    r = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200
    assert value(samples(r.text), "openscm_store_up") == 1
    # The token is never logged.
    assert token not in server.logs()


def test_promtool_checks_the_shipped_rules():
    promtool = require_tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(RULES / "openscm-alerts.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", "openscm-alerts.test.yml"],
                          cwd=RULES, capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr
