"""Malformed input never gets a 5xx, never kills the server, and changes nothing.

Every API route gets a battery of hostile bodies and paths, correctly signed (so they reach the
handlers), and must answer 4xx with the JSON error body and an X-Request-Id.
"""
import json

import pytest

BODIES = [
    b"",
    b"null",
    b"[]",
    b"1",
    b'"text"',
    b"{",
    b'{"order_number": ',
    b"\xff\xfe\x00garbage",
    b"[" * 5000 + b"]" * 5000,
    b'{"order_number": 1e400}',
    b'{"order_number": 99999999999999999999999}',
    b'{"order_number": -1, "effective_time": 1.5}',
    b'{"cert_brand": 7, "domain": ["a"], "tags": "x", "sans": {}}',
    b'{"tags": [null, 1, {"key": null}]}',
    b'{"agree_privacy_protection": "true"}',
    b'{"domain": "' + b"a" * 5000 + b'.test", "agree_privacy_protection": true}',
    b'{"csr": "-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----"}',
    b'{"service_type": "ELB\\u0000", "remote_project": "../../etc"}',
    b'{"target_service": "", "target_project": "' + b"x" * 300 + b'"}',
    json.dumps({"domain": "\u202e.test", "applicant_name": "x"}).encode(),
    b'{"domain": "\\ud800.test"}',
]

def routes(project_id, cert_id):
    return [
        ("POST", f"/v2/{project_id}/scm/cert/purchase"),
        ("POST", f"/v2/{project_id}/scm/cert/{cert_id}/save"),
        ("POST", f"/v2/{project_id}/scm/cert/{cert_id}/complete"),
        ("POST", f"/v2/{project_id}/scm/cert/{cert_id}/push"),
        ("POST", "/v3/scm/certificates/buy"),
        ("POST", f"/v3/scm/certificates/{cert_id}/apply"),
        ("POST", f"/v3/scm/certificates/{cert_id}/push"),
        ("POST", f"/v3/scm/certificates/{cert_id}/export"),
    ]

ODD_IDS = ["scs%00", "scs%2F..%2F..", "x" * 2000, "scs1481110651012%20", "%E2%80%AE", "..", "scs-1"]


def assert_clean_refusal(resp, what):
    assert resp.status < 500, f"{what}: {resp.status} {resp.text[:300]}"
    assert 400 <= resp.status < 500, f"{what}: {resp.status}"
    body = resp.json
    assert isinstance(body, dict) and body.get("error_code") and "error_msg" in body, f"{what}: {resp.text[:300]}"


def test_hostile_bodies_and_paths(servers):
    server = servers.new("robust")
    server.start()
    creds = server.credentials
    client_before = server.v3("GET", "/v3/scm/certificates", query=[("limit", 50)]).json["total_count"]
    bought = server.v3("POST", "/v3/scm/certificates/buy", {
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": 1, "agree_privacy_protection": True})
    assert bought.status == 200, bought.text
    cert_id = bought.json["cert"][0]["cert_id"]
    for method, path in routes(creds["project_id"], cert_id):
        for body in BODIES:
            resp = server.v3(method, path, body) if path.startswith("/v3") else server.v2(
                method, path.split(creds["project_id"], 1)[1], body)
            if resp.status == 200 and path.endswith("/complete"):
                pytest.fail("complete must not issue from garbage")
            if body == b"" and path.endswith("/export"):
                assert resp.status == 400 and resp.json["error_code"] == "SCM.0010"
                continue
            assert_clean_refusal(resp, f"{method} {path} {body[:40]!r}")
    for odd in ODD_IDS:
        for method, path in [("GET", f"/v3/scm/certificates/{odd}"), ("POST", f"/v3/scm/certificates/{odd}/export"),
                             ("GET", f"/v2/{creds['project_id']}/scm/cert/{odd}/push-history")]:
            resp = server.v3(method, path) if path.startswith("/v3") else server.v2(
                method, path.split(creds["project_id"], 1)[1])
            assert_clean_refusal(resp, f"{method} {path}")
    for query in ([("limit", "abc")], [("limit", 5000)], [("offset", -1)], [("status", "NOPE")],
                  [("sort_key", "'; DROP TABLE certificates; --")], [("content", "%_\\")]):
        resp = server.v3("GET", "/v3/scm/certificates", query=query)
        if query[0][0] == "content":
            assert resp.status == 200 and resp.json["certificates"] == []
        else:
            assert_clean_refusal(resp, f"list {query}")
    # Still alive, still consistent: one certificate more than before, still PAID.
    listed = server.v3("GET", "/v3/scm/certificates", query=[("limit", 50)]).json
    assert listed["total_count"] == client_before + 1
    shown = server.v3("GET", f"/v3/scm/certificates/{cert_id}").json
    assert shown["status"] == "PAID"
    assert server.raw("GET", "/health").status == 200
