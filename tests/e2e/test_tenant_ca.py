"""Every account has a CA of its own (issue 19, point 15), once per storage backend. The bootstrap
account A and a second account B each buy and issue `www.shop.test` with the official SDK (v3);
`openssl verify -CAfile A-root.pem` accepts A's certificate and refuses B's, and B's root the
other way round. The account's root is downloaded through the API (`GET /v3/scm/ca/root`,
signed as the SDK signs), the CLI (`openscm ca root`) and the console (`/console/ca-root.pem`),
and all three agree; DATA_DIR/ca-root.pem verifies the bootstrap account's certificates and not
B's. (The HTTPS listener's own root, DATA_DIR/https-root.pem, is tested in test_https.)
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
    PurchaseCertificateRequestBody,
    SubscribeCertificateRequest,
)

from e2e_helpers import console_session, openssl_verify, require_tool

DOMAIN = "www.shop.test"
APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com")


@pytest.fixture(scope="module")
def server(servers):
    s = servers.new("tenant-ca")
    s.start()
    return s


@pytest.fixture(scope="module")
def accounts(server, module_tmp, backend):
    """The credentials of A (bootstrap) and B, each also as a credentials.json of its own."""
    b = server.create_account("shop-b")
    cred = server.create_credential(b["domain_id"])
    creds_b = {**cred, "domain_id": b["domain_id"], "project_id": cred.get("project_id") or b["project_id"],
               "endpoint": server.url}
    path_b = module_tmp / f"b-{backend.name}-credentials.json"
    path_b.write_text(json.dumps(creds_b))
    path_b.chmod(0o600)
    return {"A": (server.credentials, server.credentials_path), "B": (creds_b, path_b)}


def issue_and_export(client):
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True,
    )))
    cert_id = bought.cert[0].cert_id
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=DOMAIN, agree_privacy_protection=True,
                                         domain_method="DNS", **APPLICANT),
    ))
    return client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))


def verify(workdir: Path, root: Path, leaf_pem: str, chain_pem: str) -> subprocess.CompletedProcess:
    openssl = require_tool("openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "leaf.pem").write_text(leaf_pem)
    (workdir / "chain.pem").write_text(chain_pem)
    return subprocess.run(
        [openssl, "verify", "-purpose", "sslserver", "-CAfile", str(root),
         "-untrusted", str(workdir / "chain.pem"), str(workdir / "leaf.pem")],
        capture_output=True, text=True,
    )


def cli(binary, workdir: Path, *args):
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSCM_")}
    env.update({"OPENSCM_CLI_CONFIG": str(workdir / "credentials.toml"), "NO_COLOR": "1"})
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=60,
                          env=env, cwd=workdir)
    assert proc.returncode == 0, f"openscm {' '.join(map(str, args))}: {proc.stdout} {proc.stderr}"
    return proc.stdout


def console_root(server, creds) -> str:
    s = console_session(server, creds)
    page = s.get(server.url + "/console/certificates", timeout=10)
    assert 'href="/console/ca-root.pem"' in page.text, page.text
    r = s.get(server.url + "/console/ca-root.pem", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/x-pem-file", r.headers
    assert "attachment" in r.headers["Content-Disposition"], r.headers
    return r.text


def test_an_account_trusts_its_own_root_only(server, accounts, openscm_bin, module_tmp, backend):
    work = module_tmp / f"roots-{backend.name}"
    work.mkdir(parents=True, exist_ok=True)
    roots, exports = {}, {}
    for name, (creds, creds_path) in accounts.items():
        # The root, three ways: the API (as the SDK signs), the CLI, the console.
        status, _, body = server.signed("GET", "/v3/scm/ca/root", creds=creds)
        assert status == 200, body
        assert re.fullmatch(r"[0-9a-f]{2,128}", body["ca_id"]), body
        assert body["root_certificate"].startswith("-----BEGIN CERTIFICATE-----"), body
        assert body["retired_root_certificates"] == [], body
        home = work / f"cli-{name}"
        cli(openscm_bin, home, "configure", "--from-credentials", creds_path, "-o", "json")
        from_cli = cli(openscm_bin, home, "ca", "root")
        assert from_cli.strip() == body["root_certificate"].strip()
        as_json = json.loads(cli(openscm_bin, home, "ca", "root", "-o", "json"))
        assert as_json["ca_id"] == body["ca_id"], as_json
        assert console_root(server, creds).strip() == body["root_certificate"].strip()
        roots[name] = work / f"{name}-root.pem"
        roots[name].write_text(from_cli)
        # Each account is issued www.shop.test.
        exports[name] = issue_and_export(server.sdk_client(creds))

    assert roots["A"].read_text() != roots["B"].read_text()
    for name, e in exports.items():
        openssl_verify(work / f"own-{name}", roots[name], e.certificate, e.certificate_chain)
    # A's trust store refuses B's www.shop.test, and B's refuses A's.
    for holder, other in (("A", "B"), ("B", "A")):
        e = exports[other]
        refused = verify(work / f"{holder}-refuses-{other}", roots[holder], e.certificate, e.certificate_chain)
        assert refused.returncode != 0, (
            f"{holder}'s root accepts {other}'s certificate: {refused.stdout} {refused.stderr}")
    # DATA_DIR/ca-root.pem: the bootstrap account's roots.
    openssl_verify(work / "data-a", server.ca_root_path, exports["A"].certificate,
                   exports["A"].certificate_chain)
    refused = verify(work / "data-b", server.ca_root_path, exports["B"].certificate,
                     exports["B"].certificate_chain)
    assert refused.returncode != 0, refused.stdout
    # The root is read with authentication only.
    r = requests.get(server.url + "/v3/scm/ca/root", timeout=10)
    assert r.status_code == 401, r.text
