"""Renewing by hand and the auto-renew switch (issue 16, point 3), once per storage backend:
the CLI (`openscm cert renew`, `cert auto-renew`, `cert show` listing the versions and the
history, `cert export --version 1`) and the console (the certificate page's versions and
history, its "Renew now" button and auto-renew switch, with their CSRF and origin refusals and
their audit entries). The certificate is issued through the official SDK.
"""

import json
import os
import re
import subprocess

import pytest
import requests

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    PurchaseCertificateRequestBody,
    SubscribeCertificateRequest,
)

from e2e_helpers import console_session, load_certs, spki, wait_until

APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com", agree_privacy_protection=True)


@pytest.fixture(scope="module")
def server(servers):
    s = servers.new("renew-now", config_text="[jobs]\npoll_millis = 100\n")
    s.start()
    return s


@pytest.fixture(scope="module")
def client(server):
    return server.sdk_client()


@pytest.fixture(scope="module")
def cli(server, openscm_bin, module_tmp, backend):
    home = module_tmp / f"renew-cli-{backend.name}"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSCM_")}
    env.update({"OPENSCM_CLI_CONFIG": str(home / "credentials.toml"), "NO_COLOR": "1"})

    def run(*args):
        return subprocess.run([openscm_bin, *args], capture_output=True, text=True, timeout=60,
                              env=env, cwd=home)

    assert run("configure", "--from-credentials", str(server.credentials_path)).returncode == 0
    return run


def issue(client, domain: str) -> str:
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True,
    )))
    cert_id = bought.cert[0].cert_id
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=domain, domain_method="DNS", **APPLICANT),
    ))
    return cert_id


def lifecycle(cli, cert_id) -> dict:
    proc = cli("cert", "show", cert_id, "-o", "json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout)["lifecycle"]


def test_the_cli_renews_lists_versions_and_exports_an_earlier_one(client, cli, backend, module_tmp):
    cert_id = issue(client, f"cli-renew-{backend.name}.e2e.test")
    before = lifecycle(cli, cert_id)
    assert before["current_version"] == 1 and before["auto_renew"] and before["renew_at"]
    proc = cli("cert", "renew", cert_id, "-o", "json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert json.loads(proc.stdout) == {"certificate_id": cert_id, "renewing_version": 1}
    wait_until(lambda: lifecycle(cli, cert_id)["current_version"] == 2, 30, "version 2",
               seen=lambda: lifecycle(cli, cert_id))
    after = lifecycle(cli, cert_id)
    assert [v["version"] for v in after["versions"]] == [2, 1]
    assert after["versions"][0]["reason"] == "renewal-manual" and after["versions"][0]["current"]
    events = [e["event"] for e in after["events"]]
    assert "renewal_scheduled" in events and "renewed" in events, events
    # The table lists the versions too.
    table = cli("cert", "show", cert_id)
    assert "version 2 (current)" in table.stdout and "version 1" in table.stdout, table.stdout
    # Version 1 is still exportable, with its own key; the current one has a new key.
    out = module_tmp / f"export-{backend.name}"
    for version, stem in ((["--version", "1"], "v1"), ([], "v2")):
        proc = cli("cert", "export", cert_id, "--dir", str(out), "--name", stem, *version)
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
    v1, v2 = (load_certs((out / f"{s}.crt").read_text())[0] for s in ("v1", "v2"))
    assert v1.serial_number != v2.serial_number
    assert spki(v1) != spki(v2)
    assert format(v1.serial_number, "x").lstrip("0") == after["versions"][1]["serial_number"].lstrip("0")
    # Auto-renew off, then on.
    proc = cli("cert", "auto-renew", cert_id, "off", "-o", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["auto_renew"] is False, proc.stderr
    off = lifecycle(cli, cert_id)
    assert off["auto_renew"] is False and off["renew_at"] is None
    assert cli("cert", "auto-renew", cert_id, "on").returncode == 0
    assert lifecycle(cli, cert_id)["renew_at"]
    # Refusals: a version that does not exist, a switch that is neither on nor off.
    proc = cli("cert", "export", cert_id, "--dir", str(out), "--name", "none", "--version", "9")
    assert proc.returncode == 1 and "SCM.0005" in proc.stderr, proc.stderr
    assert cli("cert", "auto-renew", cert_id, "maybe").returncode == 2




def test_the_console_renews_and_switches_auto_renew(server, client, cli, backend):
    cert_id = issue(client, f"console-renew-{backend.name}.e2e.test")
    s = console_session(server)
    page = s.get(server.url + f"/console/certificates/{cert_id}")
    assert page.status_code == 200 and 'id="versions-table"' in page.text, page.text
    assert "1 (current)" in page.text and 'id="events-table"' in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
    renew = server.url + f"/console/certificates/{cert_id}/renew"
    # A bad CSRF token, or another site's form: nothing happens.
    assert s.post(renew, data={"csrf": "0" * 64}, allow_redirects=False).status_code == 403
    r = s.post(renew, data={"csrf": csrf}, headers={"Origin": "https://evil.example"},
               allow_redirects=False)
    assert r.status_code == 403, r.text
    # Without a session: sent to sign in, nothing renewed.
    r = requests.post(renew, data={"csrf": csrf}, allow_redirects=False)
    assert r.status_code in (303, 401), r.text
    assert lifecycle(cli, cert_id)["current_version"] == 1
    r = s.post(renew, data={"csrf": csrf}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == f"/console/certificates/{cert_id}#versions", r.text
    wait_until(lambda: lifecycle(cli, cert_id)["current_version"] == 2, 30, "version 2",
               seen=lambda: lifecycle(cli, cert_id))
    page = s.get(server.url + f"/console/certificates/{cert_id}")
    assert "2 (current)" in page.text and "renewal-manual" in page.text
    switch = server.url + f"/console/certificates/{cert_id}/auto-renew"
    r = s.post(switch, data={"csrf": csrf, "auto_renew": "off"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    assert lifecycle(cli, cert_id)["auto_renew"] is False
    assert "Automatic renewal is off" in s.get(server.url + f"/console/certificates/{cert_id}").text
    r = s.post(switch, data={"csrf": csrf, "auto_renew": "sometimes"}, allow_redirects=False)
    assert r.status_code == 400, r.text
    assert lifecycle(cli, cert_id)["auto_renew"] is False
    events = json.loads(server.admin(
        "audit", "--output", "json", "--operation", "ConsoleRenewCertificate", parse=False,
    ).stdout)
    outcomes = [e["outcome"] for e in events if e["targets"] == [cert_id]]
    assert outcomes.count("ok") == 1, events
