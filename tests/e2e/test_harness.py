"""Self-checks of the harness that need no openscm server: the request signer against
the reference vectors, the nginx harness, and the PostgreSQL database helpers."""

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components import Nginx
from e2e_helpers import port_open, require_tool, self_signed_pem, sign_sdk_request

# Vector V3 of shared/reference/signing-vectors.json (huaweicloudsdkcore 3.1.219 output).
V3 = {
    "inputs": {
        "method": "POST",
        "host": "127.0.0.1:8443",
        "path": "/v2/0123456789abcdef0123456789abcdef/scm/cert/scs1481110651012/push",
        "query": [],
        "headers": {
            "Content-Type": "application/json;charset=UTF-8",
            "X-Sdk-Date": "20240102T030405Z",
            "User-Agent": "test",
        },
        "body": '{"service_type": "WAF", "remote_project": "cn-north-7"}',
        "access_key": "AKTESTAKTESTAKTEST01",
        "secret_key": "SKtestSKtestSKtestSKtestSKtestSKtest0001",
        "project_id": "0123456789abcdef0123456789abcdef",
    },
    "expected": {
        "request_uri": "/v2/0123456789abcdef0123456789abcdef/scm/cert/scs1481110651012/push",
        "headers_sent": {
            "Content-Type": "application/json;charset=UTF-8",
            "X-Sdk-Date": "20240102T030405Z",
            "User-Agent": "test",
            "X-Project-Id": "0123456789abcdef0123456789abcdef",
            "Host": "127.0.0.1:8443",
            "Authorization": "SDK-HMAC-SHA256 Access=AKTESTAKTESTAKTEST01, "
                             "SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, "
                             "Signature=f5f01c7f09d2e3cb0db64ed6dfa7967f29cbde999367cabf78621d75f94f0cb3",
        },
    },
}

# Vector V1 (GlobalCredentials with domain id, typed query): the path raw v3 calls take.
V1 = {
    "inputs": {
        "method": "GET",
        "host": "scm.cn-north-4.myhuaweicloud.com",
        "path": "/v3/scm/certificates",
        "query": [["limit", 10], ["offset", 0], ["status", "ALL"], ["sort_dir", "DESC"], ["deploy_support", True]],
        "headers": {
            "Content-Type": "application/json",
            "X-Sdk-Date": "20240102T030405Z",
            "User-Agent": "huaweicloud-usdk-python/3.0; test",
        },
        "body": None,
        "access_key": "AKTESTAKTESTAKTEST01",
        "secret_key": "SKtestSKtestSKtestSKtestSKtestSKtest0001",
        "domain_id": "d0m41n1d0000000000000000000000ab",
    },
    "expected": {
        "request_uri": "/v3/scm/certificates?deploy_support=true&limit=10&offset=0&sort_dir=DESC&status=ALL",
        "headers_sent": {
            "Content-Type": "application/json",
            "X-Sdk-Date": "20240102T030405Z",
            "User-Agent": "huaweicloud-usdk-python/3.0; test",
            "X-Domain-Id": "d0m41n1d0000000000000000000000ab",
            "Host": "scm.cn-north-4.myhuaweicloud.com",
            "Authorization": "SDK-HMAC-SHA256 Access=AKTESTAKTESTAKTEST01, "
                             "SignedHeaders=content-type;host;user-agent;x-domain-id;x-sdk-date, "
                             "Signature=4f82e441ac568dcea36a4411fa20204cbcfaa0050876294ba76f341b70abda56",
        },
    },
}


def test_signer_matches_vector():
    """The v2 signing helper (SDK Signer + BasicCredentials) reproduces vector V3."""
    i = V3["inputs"]
    req = sign_sdk_request(i["method"], i["host"], i["path"], ak=i["access_key"], sk=i["secret_key"],
                           query=i["query"], headers=i["headers"], body=i["body"],
                           project_id=i["project_id"])
    assert req.uri == V3["expected"]["request_uri"]
    assert dict(req.header_params) == V3["expected"]["headers_sent"]
    assert req.body == i["body"].encode()


def test_signer_matches_vector_v1_global_credentials():
    i = V1["inputs"]
    req = sign_sdk_request(i["method"], i["host"], i["path"], ak=i["access_key"], sk=i["secret_key"],
                           query=[tuple(q) for q in i["query"]], headers=i["headers"], body=i["body"],
                           domain_id=i["domain_id"])
    assert req.uri == V1["expected"]["request_uri"]
    assert dict(req.header_params) == V1["expected"]["headers_sent"]


def test_nginx_harness_serves_and_reloads(tmp_path):
    """The harness starts nginx on a free port, serves the initial self-signed cert, picks
    up a swapped cert on reload, and stops by pid."""
    ngx = Nginx(tmp_path / "nginx")
    ngx.start()
    try:
        initial = x509.load_pem_x509_certificate(ngx.initial_cert_pem)
        der = ngx.served_cert("www.e2e.test")
        assert x509.load_der_x509_certificate(der) == initial

        cert_pem, key_pem = self_signed_pem("openscm-e2e swapped", ["www.e2e.test"])
        ngx.cert_path.write_bytes(cert_pem)
        ngx.key_path.write_bytes(key_pem)
        subprocess.run(ngx.test_command(), check=True, capture_output=True)
        subprocess.run(ngx.reload_command(), check=True, capture_output=True)
        swapped = x509.load_pem_x509_certificate(cert_pem)
        ngx.wait_for_cert("www.e2e.test", swapped.public_bytes(serialization.Encoding.DER))
    finally:
        proc = ngx.proc
        ngx.stop()
    assert proc.returncode == 0
    assert not port_open(ngx.port)


def test_pg_createdb_dropdb(pg_base):
    """createdb/dropdb next to OPENSCM_TEST_PG_URL work (the postgres backend needs them)."""
    url = pg_base.create("harness")
    name = url.rsplit("/", 1)[-1]
    try:
        assert pg_base.exists(name)
        assert pg_base.psql(name, "SELECT 41 + 1").strip() == "42"
    finally:
        pg_base.drop(url)
    assert not pg_base.exists(name)


@pytest.mark.parametrize("tool", ["openssl", "nginx", "createdb", "dropdb", "pg_dump"])
def test_required_tools_present(tool):
    require_tool(tool)
