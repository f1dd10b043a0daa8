"""The deployment engine end to end, on SQLite: pushes to real targets (nginx, HAProxy through its
runtime API, files with PKCS#12, a webhook receiver, an exec hook), each checked by a TLS handshake
with what the target serves where it has one; a target that is down and comes back; "delivered but
not served" told once by mail (aiosmtpd); drift found by the sweep, told once and re-delivered;
1,000 queued deliveries through a SIGKILL; batch-push and deploy with one bad target.

Every test has its own server whose config names its push targets (bootstrap, then the config
that needs the bootstrap account's domain id). Components: `components.Nginx`, `HAProxy`,
`SmtpReceiver`, `WebhookReceiver`.
"""

import concurrent.futures
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
)

from components import HAProxy, Nginx, SmtpReceiver, WebhookReceiver, started
from e2e_helpers import (
    E2EError,
    faketime_env,
    load_certs,
    require_tool,
    self_signed_pem,
    spki,
    tail,
    wait_until,
)
from fixtures import Backend

REGION = "cn-north-4"
COMPANY = dict(company_name="OpenSCM Deploy Org", company_unit="Ops", company_province="Sichuan",
               company_city="Chengdu", country="CN")
APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com", agree_privacy_protection=True)
# Fast job polling; webhooks to this machine's loopback; a short TLS check window.
BASE_CONFIG = """\
[jobs]
poll_millis = {poll_millis}
{jobs}
[egress]
allow_loopback = true

[delivery]
verify_seconds = {verify_seconds}
{delivery}
"""


@pytest.fixture(scope="module")
def backend():
    """These tests need no PostgreSQL: SQLite only (the store is read directly where the API does
    not show what is checked)."""
    b = Backend("sqlite")
    yield b
    b.cleanup()


# --------------------------------------------------------------------------- helpers


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, Path):
        return json.dumps(str(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def table(header: str, **keys) -> str:
    return f"[[{header}]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()) + "\n"


def target(name, kind, account, region=REGION, **keys) -> str:
    return table("push_targets", name=name, kind=kind, account=account, service="ELB",
                 region=region, **keys)


def start_server(servers, name, targets, verify_seconds=3, poll_millis=100, jobs="",
                 delivery=""):
    """A server whose config is BASE_CONFIG (`jobs` and `delivery`: more keys of those tables)
    and what `targets(account)` gives: push targets, notifiers."""
    def make(creds):
        return (BASE_CONFIG.format(verify_seconds=verify_seconds, poll_millis=poll_millis,
                                   jobs=jobs, delivery=delivery)
                + "\n" + targets(creds["domain_id"]))
    return servers.bootstrap_then_configure(name, make)


def issue(server, domains) -> list:
    """Buys (v2) and applies for (SDK v3, EC P-256) one certificate per domain; their ids."""
    resp = server.v2("POST", "/scm/cert/purchase", {
        "cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": len(domains),
        "agree_privacy_protection": True,
    })
    assert resp.status == 200, f"purchase of {len(domains)} certificates: {resp!r}"
    ids = [c["cert_id"] for c in resp.json["cert"]]
    client = server.sdk_client()

    def apply(pair):
        cert_id, domain = pair
        client.apply_certificate(ApplyCertificateRequest(
            certificate_id=cert_id,
            body=ApplyCertificateRequestBody(domain=domain, domain_method="DNS",
                                             key_algorithm="EC_P256", **COMPANY, **APPLICANT)))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(apply, zip(ids, domains)))
    return ids


def export(server, cert_id) -> dict:
    e = server.sdk_client().export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    leaf = load_certs(e.certificate)[0]
    return {"leaf": leaf, "der": leaf.public_bytes(serialization.Encoding.DER),
            "pem": e.certificate, "chain_pem": e.certificate_chain, "key_pem": e.private_key}


def push(server, cert_id, region=REGION, timeout=60):
    """v3 PushCertificate to the ELB targets of `region`."""
    return server.v3("POST", f"/v3/scm/certificates/{cert_id}/push",
                     {"target_project": region, "target_service": "ELB"}, timeout=timeout)


def assert_pushed(resp, what):
    assert resp.status in (200, 204), f"{what}: the push was not answered as a success: {resp!r}"


def assert_push_failed(resp, *phrases):
    assert resp.status == 400 and resp.json and resp.json.get("error_code") == "SCM.0028", (
        f"expected a failed push (400 SCM.0028), got {resp!r}")
    for p in phrases:
        assert p in resp.json["error_msg"], f"the push's answer does not say {p!r}: {resp.json}"


def db(server):
    path = server.data_dir / "openscm.db"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def query(server, sql, *args):
    with db(server) as conn:
        return conn.execute(sql, args).fetchall()


def push_records(server, cert_id):
    """(outcome, verified, targets, attempt, detail) of every attempt recorded, oldest first."""
    return query(server, "SELECT outcome, verified, targets, attempt, detail FROM push_records "
                         "WHERE cert_id = ? ORDER BY id", cert_id)


def jobs(server, kind=None):
    listed = server.admin("job", "list", "--limit", "10000")
    return [j for j in listed if kind is None or j["kind"] == kind]


def settled_notifications(server, timeout=30):
    """The notify jobs once none is pending or running."""
    def done():
        js = jobs(server, "notify")
        return js if all(j["state"] in ("done", "failed") for j in js) else None
    return wait_until(done, timeout, "every notify job to end",
                      seen=lambda: [(j["id"], j["state"], j["last_error"]) for j in jobs(server, "notify")],
                      interval=0.2)


def event_of(job) -> str:
    payload = job.get("payload") or {}
    return (payload.get("notification") or {}).get("event") or json.dumps(payload)


def secret_file(path: Path, secret: str) -> Path:
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def leaf_of_file(path: Path):
    certs = load_certs(Path(path).read_bytes())
    assert certs, f"{path} holds no certificate"
    return certs[0]


# --------------------------------------------------------------------------- 1. nginx


def test_nginx_push_is_served_verified_and_in_history(servers, tmp_path):
    domain = "www.nginx.deploy.test"
    with started(Nginx(tmp_path / "nginx")) as nginx:
        server = start_server(servers, "nginx", lambda acct: target(
            "web", "nginx", acct, cert_path=nginx.cert_path, key_path=nginx.key_path,
            test_command=nginx.test_command(), reload_command=nginx.reload_command(),
            verify={"address": f"127.0.0.1:{nginx.port}", "server_name": domain}))
        (cert_id,) = issue(server, [domain])
        e = export(server, cert_id)
        assert nginx.served_cert(domain) != e["der"], "nginx served the certificate before the push"

        resp = push(server, cert_id)
        assert_pushed(resp, "push to nginx")
        # A handshake made now (no verification: the leaf is compared) sees the new certificate.
        nginx.wait_for_cert(domain, e["der"], timeout=5)

        history = server.v2("GET", f"/scm/cert/{cert_id}/push-history")
        assert history.status == 200, history
        entries = history.json["push_history_list"]
        assert len(entries) == 1 and entries[0]["push_service"] == "ELB" \
            and entries[0]["push_remote_project"] == REGION, f"push history: {entries}"
        records = push_records(server, cert_id)
        assert [(r[0], r[1], r[2]) for r in records] == [("success", 1, "web")], (
            f"the store's push records are not one verified success to web: {records}")

        placed = server.v3("POST", "/v3/scm/deployed-resources",
                           {"certificate_ids": [cert_id], "service_names": ["ELB"]})
        assert placed.status == 200, placed
        elb = placed.json["results"][0]["deployed_resources"][0]
        names = [r["resource_id"] for rr in elb["region_resources"] for r in rr["resources"]]
        assert names == ["web"], f"ListDeployedResources: {placed.json}"

        # The same version again: already served, recorded unchanged.
        assert_pushed(push(server, cert_id), "second push of the same version")
        records = push_records(server, cert_id)
        assert [r[0] for r in records] == ["success", "unchanged"], (
            f"a push of a version already served is not recorded unchanged: {records}")


# --------------------------------------------------------------------------- 2. HAProxy


def wrk_summary(text: str) -> dict:
    out = {"requests": None, "errors": 0, "non2xx": 0}
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    return out


def test_haproxy_runtime_swap_served_without_reload_and_100_pushes_under_load(servers, tmp_path):
    """100 successive pushes of 100 different certificates (issued up front) to one HAProxy
    target, under wrk load over TLS with a new handshake per request (Connection: close)."""
    wrk = require_tool("wrk")
    n = 100
    domains = [f"h{i}.haproxy.deploy.test" for i in range(n + 1)]
    with started(HAProxy(tmp_path / "haproxy")) as hap:
        server = start_server(servers, "haproxy", lambda acct: target(
            "lb", "haproxy", acct, socket=hap.socket, cert_path=hap.cert_path,
            crt_list=hap.crt_list, verify={"address": f"127.0.0.1:{hap.port}"}))
        ids = issue(server, domains)
        pid = hap.pid
        first = export(server, ids[0])
        assert_pushed(push(server, ids[0]), "first push to HAProxy")
        got = hap.served_cert()
        assert got == first["der"], (
            f"HAProxy serves {x509.load_der_x509_certificate(got).subject.rfc4514_string()} "
            f"after the push, not {first['leaf'].subject.rfc4514_string()}")
        assert hap.running and hap.pid == pid, "HAProxy was restarted by the push"
        assert str(hap.cert_path) in hap.runtime("show ssl cert"), hap.runtime("show ssl cert")

        leaves = {i: export(server, i)["der"] for i in ids[1:]}
        proc = subprocess.Popen([wrk, "-t1", "-c2", "-d120s", "-H", "Connection: close",
                                 f"https://127.0.0.1:{hap.port}/"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        failures = []
        try:
            time.sleep(0.5)  # wrk is connected before the first swap
            for k, cert_id in enumerate(ids[1:]):
                resp = push(server, cert_id)
                if resp.status not in (200, 204):
                    failures.append((k, resp.text[:300]))
                    continue
                served = hap.served_cert()
                if served != leaves[cert_id]:
                    failures.append((k, "a handshake right after the push saw another certificate"))
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        summary = wrk_summary(out)
        print(f"wrk during {n} pushes: {summary}")
        assert not failures, f"{len(failures)} of {n} pushes failed, first ones: {failures[:5]}"
        assert summary["requests"] and summary["requests"] > 0, f"wrk made no request:\n{out}"
        assert summary["errors"] == 0 and summary["non2xx"] == 0, (
            f"wrk saw failed requests during the swaps: {summary}\n{out}\n{hap.output()}")
        assert hap.running and hap.pid == pid, f"HAProxy's pid changed ({pid} -> {hap.pid})"
        info = hap.runtime("show info")
        assert f"Pid: {pid}" in info, f"HAProxy's runtime API names another process: {info[:300]}"
        records = query(server, "SELECT outcome, verified FROM push_records WHERE targets = 'lb'")
        assert records.count(("success", 1)) == n + 1, f"verified successes: {records}"


# --------------------------------------------------------------------------- 3. files + PKCS#12


def test_files_target_writes_each_form_with_its_mode_and_a_pkcs12_openssl_reads(servers, tmp_path):
    openssl = require_tool("openssl")
    out = tmp_path / "tls"
    out.mkdir()
    password = secret_file(tmp_path / "p12.pass", "correct horse battery staple")
    files = [
        {"path": out / "fullchain.pem", "content": "fullchain", "mode": "0640"},
        {"path": out / "key.pem", "content": "key"},
        {"path": out / "combined.pem", "content": "combined"},
        {"path": out / "site.p12", "content": "pkcs12", "password_file": password},
    ]
    server = start_server(servers, "files", lambda acct: target("disk", "files", acct, files=files))
    (cert_id,) = issue(server, ["www.files.deploy.test"])
    e = export(server, cert_id)
    assert_pushed(push(server, cert_id), "push to the files target")

    modes = {f["path"].name: oct(f["path"].stat().st_mode & 0o777) for f in files}
    assert modes == {"fullchain.pem": "0o640", "key.pem": "0o600", "combined.pem": "0o600",
                     "site.p12": "0o600"}, f"file modes: {modes}"
    assert load_certs((out / "fullchain.pem").read_bytes()) == \
        load_certs(e["pem"]) + load_certs(e["chain_pem"]), "fullchain.pem is not leaf + chain"
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    assert spki(key) == spki(e["leaf"]), "key.pem does not match the leaf"
    combined = (out / "combined.pem").read_text()
    assert combined.index("PRIVATE KEY") < combined.index("CERTIFICATE"), "combined: key first"
    assert load_certs(combined)[0] == e["leaf"], "combined.pem's first certificate is not the leaf"

    proc = subprocess.run([openssl, "pkcs12", "-in", str(out / "site.p12"), "-passin",
                           f"file:{password}", "-nokeys", "-clcerts"], capture_output=True, text=True)
    assert proc.returncode == 0, f"openssl pkcs12 cannot read site.p12: {proc.stderr}"
    assert load_certs(proc.stdout) == [e["leaf"]], f"the p12's leaf is not the certificate: {proc.stdout}"
    proc = subprocess.run([openssl, "pkcs12", "-in", str(out / "site.p12"), "-passin",
                           f"file:{password}", "-nocerts", "-nodes"], capture_output=True, text=True)
    assert proc.returncode == 0, f"openssl pkcs12 cannot read the p12's key: {proc.stderr}"
    p12_key = serialization.load_pem_private_key(proc.stdout[proc.stdout.index("-----BEGIN"):].encode(),
                                                 password=None)
    assert spki(p12_key) == spki(e["leaf"]), "the p12's key does not match the leaf"


# --------------------------------------------------------------------------- 4. webhook


def test_webhook_target_posts_a_signed_body_without_the_key(servers, tmp_path):
    secret = "s3cret-of-the-hook"
    with WebhookReceiver() as hook:
        sf = secret_file(tmp_path / "hook.secret", secret)
        server = start_server(servers, "webhook", lambda acct: target(
            "hook", "webhook", acct, url=hook.url("/deliver"), secret_file=sf))
        (cert_id,) = issue(server, ["www.hook.deploy.test"])
        e = export(server, cert_id)
        assert_pushed(push(server, cert_id), "push to the webhook target")

        got = hook.received("/deliver")
        assert len(got) == 1, f"the receiver got {len(got)} requests: {got}"
        req = got[0]
        expected = "sha256=" + hmac.new(secret.encode(), req["body"], hashlib.sha256).hexdigest()
        assert req["headers"].get("x-openscm-signature") == expected, (
            f"signature {req['headers'].get('x-openscm-signature')!r}, expected {expected!r} "
            f"(HMAC-SHA256 of the body under the trimmed secret)")
        assert req["headers"].get("x-openscm-event") == "certificate_delivered", req["headers"]
        body = json.loads(req["body"])
        assert "private_key" not in body, "the body carries the private key by default"
        assert "PRIVATE KEY" not in req["body"].decode(), "a private key is in the body"
        assert body["event"] == "certificate_delivered" and body["target"] == "hook", body
        assert body["certificate_id"] == cert_id and body["version"] == 1, body
        assert load_certs(body["certificate"]) == [e["leaf"]], "body.certificate is not the leaf"
        assert load_certs(body["fullchain"]) == [e["leaf"]] + load_certs(e["chain_pem"]), body
        assert body["sha256_fingerprint"] == hashlib.sha256(e["der"]).hexdigest(), body
        assert body["names"] == ["www.hook.deploy.test"], body
        assert abs(body["at_ms"] - time.time() * 1000) < 60_000, body


# --------------------------------------------------------------------------- 5. exec


HOOK = """#!/bin/sh
set -e
out="$1"
env | grep '^OPENSCM_' | sort > "$out/env"
cp "$OPENSCM_FILE_FULLCHAIN" "$out/fullchain.pem"
cp "$OPENSCM_FILE_KEY" "$out/key.pem"
stat -c '%a %n' "$OPENSCM_FILE_KEY" "$(dirname "$OPENSCM_FILE_KEY")" > "$out/modes"
"""


def test_exec_target_runs_the_hook_with_its_environment_and_files(servers, tmp_path):
    out = tmp_path / "hook-out"
    out.mkdir()
    script = tmp_path / "deploy-hook"
    script.write_text(HOOK)
    script.chmod(0o755)
    server = start_server(servers, "exec", lambda acct: target(
        "hook", "exec", acct, command=[script, out]))
    (cert_id,) = issue(server, ["www.exec.deploy.test"])
    e = export(server, cert_id)
    assert_pushed(push(server, cert_id), "push to the exec target")

    assert (out / "env").exists(), "the hook did not run (no env file)"
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines())
    assert env.get("OPENSCM_CERTIFICATE_ID") == cert_id, env
    assert env.get("OPENSCM_VERSION") == "1", env
    assert env.get("OPENSCM_TARGET") == "hook", env
    assert env.get("OPENSCM_NAMES") == "www.exec.deploy.test", env
    assert env.get("OPENSCM_SERIAL", "").lower().lstrip("0") == format(e["leaf"].serial_number, "x"), env
    assert env.get("OPENSCM_FINGERPRINT_SHA256", "").lower() == hashlib.sha256(e["der"]).hexdigest(), env
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", env.get("OPENSCM_NOT_AFTER", "")), env
    assert env.get("OPENSCM_JOB_ID", "").isdigit() and env.get("OPENSCM_ATTEMPT", "").isdigit(), env
    for content in ("FULLCHAIN", "KEY", "LEAF", "CHAIN"):
        assert f"OPENSCM_FILE_{content}" in env, f"OPENSCM_FILE_{content} missing: {env}"
    assert load_certs((out / "fullchain.pem").read_bytes()) == \
        load_certs(e["pem"]) + load_certs(e["chain_pem"]), "the hook's fullchain is not leaf + chain"
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    assert spki(key) == spki(e["leaf"]), "the hook's key does not match the leaf"
    modes = (out / "modes").read_text().split()
    assert modes[0] == "600" and modes[2] == "700", f"the key file and its directory: {modes}"
    private_dir = Path(env["OPENSCM_FILE_KEY"]).parent
    assert not private_dir.exists(), f"the private directory {private_dir} was not removed"


# --------------------------------------------------------------------------- 6. down, then back


def test_a_target_that_is_down_is_retried_and_delivered_when_it_comes_back(servers, tmp_path):
    """An nginx target whose verify address has nothing listening at first (nginx not started;
    the reload command does nothing, nginx reads the files when it starts)."""
    domain = "www.down.deploy.test"
    nginx = Nginx(tmp_path / "nginx")
    server = start_server(servers, "down", lambda acct: target(
        "late", "nginx", acct, cert_path=nginx.cert_path, key_path=nginx.key_path,
        reload_command=["true"], verify={"address": f"127.0.0.1:{nginx.port}",
                                         "server_name": domain}), verify_seconds=1)
    (cert_id,) = issue(server, [domain])
    e = export(server, cert_id)

    for attempt in (1, 2):
        resp = push(server, cert_id)
        assert_push_failed(resp, "pending retry", "delivered but not served", "target late")
    records = push_records(server, cert_id)
    assert [r[0] for r in records] == ["failure", "failure"], f"recorded attempts: {records}"
    assert all("not served" in r[4] for r in records), records
    history = server.v2("GET", f"/scm/cert/{cert_id}/push-history").json["push_history_list"]
    assert history == [], f"failed attempts are in the (successful-only) push history: {history}"
    (job,) = [j for j in jobs(server, "deliver") if j["payload"].get("certificate_id") == cert_id]
    assert job["state"] == "pending" and job["attempts"] == 2, f"the delivery job: {job}"

    with started(nginx):
        nginx.wait_for_cert(domain, e["der"], timeout=10)  # it loaded the files OpenSCM wrote
        # A new push joins the queued delivery and makes it due now.
        assert_pushed(push(server, cert_id), "push once the target is back")
    records = push_records(server, cert_id)
    assert [(r[0], r[1]) for r in records] == [("failure", 0), ("failure", 0), ("success", 1)], (
        f"the attempts recorded: {records}")
    (job,) = [j for j in jobs(server, "deliver") if j["payload"].get("certificate_id") == cert_id]
    assert job["state"] == "done" and job["attempts"] == 3, f"the delivery job: {job}"
    history = server.v2("GET", f"/scm/cert/{cert_id}/push-history").json["push_history_list"]
    assert len(history) == 1, f"push history after the success: {history}"


# --------------------------------------------------------------------------- 7. not served


def test_not_served_is_a_failure_told_once_by_mail(servers, tmp_path):
    domain = "www.stale.deploy.test"
    with started(Nginx(tmp_path / "nginx")) as nginx, \
            started(SmtpReceiver(tmp_path / "smtp")) as smtp:
        extra = table("notifiers", name="ops-mail", kind="smtp", account="{account}",
                      server=smtp.address, tls="none", **{"from": "openscm@deploy.test"},
                      to=["ops@deploy.test"], timeout_seconds=10)
        server = start_server(servers, "stale", lambda acct: extra.replace("{account}", acct) + target(
            "stale-web", "nginx", acct, cert_path=nginx.cert_path, key_path=nginx.key_path,
            test_command=nginx.test_command(), reload_command=["true"],
            verify={"address": f"127.0.0.1:{nginx.port}", "server_name": domain}),
            verify_seconds=1)
        (cert_id,) = issue(server, [domain])
        e = export(server, cert_id)

        assert_push_failed(push(server, cert_id), "delivered but not served", "pending retry")
        assert load_certs(nginx.cert_path.read_bytes())[0] == e["leaf"], "the files were not written"
        assert nginx.served_cert(domain) != e["der"], "nginx serves the new certificate (no reload?)"
        wait_until(lambda: smtp.messages(), 30, "the not_served mail",
                   seen=lambda: ([j for j in jobs(server, "notify")], smtp.output()), interval=0.2)

        assert_push_failed(push(server, cert_id), "delivered but not served")
        notes = settled_notifications(server)
        events = [event_of(j) for j in notes]
        assert events == ["not_served"], f"notify jobs after two failed attempts: {notes}"
        mails = smtp.messages()
        assert len(mails) == 1, f"{len(mails)} mails: {[m['Subject'] for m in mails]}"
        subject = mails[0]["Subject"]
        assert "Not served" in subject and cert_id in subject and "stale-web" in subject, subject
        body = mails[0].get_payload(decode=True).decode()
        assert hashlib.sha256(e["der"]).hexdigest() in body.lower(), body
        records = push_records(server, cert_id)
        assert [r[0] for r in records] == ["failure", "failure"], records


# --------------------------------------------------------------------------- 8. drift


def test_drift_is_found_told_once_and_redelivered(servers, tmp_path):
    """drift_check_minutes = 1 is the shortest; the wait is skipped by restarting the server 3
    minutes ahead (libfaketime): its drift sweep is then due at once."""
    domain = "www.drift.deploy.test"
    secret = "drift-hook-secret"
    with started(Nginx(tmp_path / "nginx")) as nginx, WebhookReceiver() as hook:
        sf = secret_file(tmp_path / "notify.secret", secret)
        notifier = table("notifiers", name="ops-hook", kind="webhook", account="{account}",
                         url=hook.url("/notify"), secret_file=sf)
        server = start_server(servers, "drift", lambda acct: notifier.replace("{account}", acct) + target(
            "drift-web", "nginx", acct, cert_path=nginx.cert_path, key_path=nginx.key_path,
            test_command=nginx.test_command(), reload_command=nginx.reload_command(),
            verify={"address": f"127.0.0.1:{nginx.port}", "server_name": domain},
            redeliver_on_drift=True), delivery="drift_check_minutes = 1")
        (cert_id,) = issue(server, [domain])
        e = export(server, cert_id)
        assert_pushed(push(server, cert_id), "push to nginx")
        nginx.wait_for_cert(domain, e["der"])

        # Out of band: another certificate in nginx's files, and a reload.
        other_cert, other_key = self_signed_pem("replaced out of band", [domain])
        nginx.cert_path.write_bytes(other_cert)
        nginx.key_path.write_bytes(other_key)
        subprocess.run(nginx.reload_command(), check=True, capture_output=True)
        other_der = load_certs(other_cert)[0].public_bytes(serialization.Encoding.DER)
        nginx.wait_for_cert(domain, other_der)

        server.env.update(faketime_env("+3m"))
        server.restart()

        def drift_notes():
            return [r for r in hook.received("/notify")
                    if json.loads(r["body"]).get("event") == "drift"]
        wait_until(drift_notes, 45, "a drift notification",
                   seen=lambda: (hook.received(), query(server, "SELECT * FROM deployments"),
                                 [(j["kind"], j["state"], j["due"]) for j in jobs(server)]),
                   interval=0.2)
        nginx.wait_for_cert(domain, e["der"], timeout=30)  # re-delivered
        # The sweep's record: its check (checked_ms) and the forced re-delivery it queued (the
        # re-delivery clears drift_ms, so the drift itself shows in the notification below).
        rows = query(server, "SELECT drift_ms, checked_ms FROM deployments WHERE cert_id = ?", cert_id)
        assert rows and rows[0][1] is not None, f"the drift check was not recorded: {rows}"
        forced = [j for j in jobs(server, "deliver")
                  if j["payload"].get("certificate_id") == cert_id and j["payload"].get("force")]
        assert len(forced) == 1 and forced[0]["state"] == "done", (
            f"the sweep did not queue one forced re-delivery: {jobs(server, 'deliver')}")
        records = push_records(server, cert_id)
        assert [(r[0], r[1]) for r in records] == [("success", 1), ("success", 1)], (
            f"expected the push and the re-delivery, both verified: {records}")

        notes = settled_notifications(server)
        assert [event_of(j) for j in notes] == ["drift"], f"notify jobs: {notes}"
        got = drift_notes()
        assert len(got) == 1, f"{len(got)} drift notifications: {got}"
        req = got[0]
        expected = "sha256=" + hmac.new(secret.encode(), req["body"], hashlib.sha256).hexdigest()
        assert req["headers"].get("x-openscm-signature") == expected, req["headers"]
        body = json.loads(req["body"])
        assert body.get("certificate_id") == cert_id and body.get("target") == "drift-web", body
        assert body.get("served_sha256") == hashlib.sha256(other_der).hexdigest(), body


# --------------------------------------------------------------------------- 9. SIGKILL


def test_1000_queued_deliveries_survive_a_sigkill_each_recorded_once(servers, tmp_path):
    """100 certificates, each pushed (admin push, queued) to its own region's 10 files targets:
    1,000 deliveries, each (certificate, target) writing its own file. The server is SIGKILLed
    mid-way and started again."""
    n_certs, n_targets = 100, 10
    out = tmp_path / "out"

    def targets(acct):
        text = ""
        for c in range(n_certs):
            (out / f"r{c}").mkdir(parents=True, exist_ok=True)
            for t in range(n_targets):
                text += target(f"t{c}-{t}", "files", acct, region=f"r{c}",
                               files=[{"path": out / f"r{c}" / f"t{t}.pem", "content": "fullchain"}])
        return text

    # A short lease: the jobs the killed server held are taken again soon after the restart.
    server = start_server(servers, "sigkill", targets, poll_millis=50, jobs="lease_seconds = 3")
    ids = issue(server, [f"k{i}.sigkill.deploy.test" for i in range(n_certs)])
    leaves = {cert_id: export(server, cert_id)["leaf"] for cert_id in ids}
    server.stop()

    # Queued while no server runs, so that they are all pending when it starts.
    def queue(pair):
        c, cert_id = pair
        answer = server.admin("--config", server.config_path, "push", "--certificate", cert_id, "--service", "ELB", "--region", f"r{c}")
        assert len(answer["deliveries"]) == n_targets, answer
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(queue, enumerate(ids)))

    def successes():
        return query(server, "SELECT count(*) FROM push_records WHERE outcome = 'success'")[0][0]

    server.start()
    killed_at = wait_until(lambda: (lambda n: n if n >= 150 else None)(successes()), 120,
                           "150 deliveries before the SIGKILL", seen=successes, interval=0.01)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    server.proc = None
    done_at_kill = successes()
    assert done_at_kill < n_certs * n_targets, (
        f"every delivery was done before the SIGKILL ({done_at_kill}): nothing was interrupted")

    server.start()

    def open_jobs():
        return query(server, "SELECT state, count(*) FROM jobs WHERE kind = 'deliver' "
                             "AND state != 'done' GROUP BY state")
    wait_until(lambda: not open_jobs(), 180, "every delivery job done", seen=open_jobs, interval=0.5)

    wrong = []
    for c, cert_id in enumerate(ids):
        for t in range(n_targets):
            path = out / f"r{c}" / f"t{t}.pem"
            if not path.exists() or leaf_of_file(path) != leaves[cert_id]:
                wrong.append(str(path))
    assert not wrong, f"{len(wrong)} files do not hold their certificate, e.g. {wrong[:5]}"

    counts = query(server, "SELECT cert_id, targets, count(*) FROM push_records "
                           "WHERE outcome = 'success' GROUP BY cert_id, targets")
    assert len(counts) == n_certs * n_targets, f"{len(counts)} (certificate, target) pairs recorded"
    dupes = [r for r in counts if r[2] != 1]
    assert not dupes, f"deliveries recorded more than once: {dupes[:10]}"
    per_key = query(server, "SELECT dedupe_key, count(*) FROM jobs WHERE kind = 'deliver' "
                            "GROUP BY dedupe_key")
    assert len(per_key) == n_certs * n_targets and all(r[1] == 1 for r in per_key), (
        f"delivery jobs per (certificate, target): {[r for r in per_key if r[1] != 1][:10]} "
        f"of {len(per_key)}")
    listed = [j for j in jobs(server, "deliver")]
    assert len(listed) == n_certs * n_targets and all(j["state"] == "done" for j in listed), (
        f"admin job list: {len(listed)} deliver jobs, states "
        f"{sorted({j['state'] for j in listed})}")
    print(f"SIGKILL after {done_at_kill} of {n_certs * n_targets} deliveries ({killed_at})")


# --------------------------------------------------------------------------- 10. batch-push, deploy


def test_batch_push_and_deploy_deliver_the_good_targets_and_report_the_bad_one(servers, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    missing = tmp_path / "no-such-dir"

    def targets(acct):
        return (target("good-a", "files", acct, region="r1",
                       files=[{"path": out / "a.pem", "content": "fullchain"}])
                + target("good-b", "files", acct, region="r2",
                         files=[{"path": out / "b.pem", "content": "fullchain"}])
                + target("bad", "files", acct, region="r3",
                         files=[{"path": missing / "bad.pem", "content": "fullchain"}]))

    server = start_server(servers, "batch", targets)
    cert_id, cert2 = issue(server, ["www.batch.deploy.test", "www.deploy2.deploy.test"])
    e = export(server, cert_id)

    resp = server.v3("POST", f"/v3/scm/certificates/{cert_id}/batch-push",
                     {"target_projects": ["r1", "r2", "r3"], "target_service": "ELB"})
    assert resp.status == 200, f"batch-push: {resp!r}"
    results = {r["project_name"]: r for r in resp.json["results"]}
    assert set(results) == {"r1", "r2", "r3"}, resp.json
    for good in ("r1", "r2"):
        assert results[good]["message"] == "success" and results[good]["cert_id"] == cert_id, resp.json
    assert results["r3"]["message"] != "success" and results["r3"]["cert_id"] is None, resp.json
    assert "bad" in results["r3"]["message"], f"the failure does not name the target: {results['r3']}"
    for name in ("a.pem", "b.pem"):
        assert leaf_of_file(out / name) == e["leaf"], f"{name} does not hold the certificate"

    e2 = export(server, cert2)
    resp = server.v3("POST", f"/v3/scm/certificates/{cert2}/deploy", {
        "service_name": "ELB",
        "resources": [{"id": "good-a"}, {"id": "bad"}, {"id": "good-b"}],
    })
    assert resp.status == 200, f"deploy: {resp!r}"
    failures = resp.json["failure_list"]
    assert [f["resource"] for f in failures] == ["bad"], f"deploy's failure list: {failures}"
    assert "bad" in failures[0]["failure_info"] or "no-such-dir" in failures[0]["failure_info"], failures
    for name in ("a.pem", "b.pem"):
        assert leaf_of_file(out / name) == e2["leaf"], f"{name} does not hold the deployed certificate"
    records = query(server, "SELECT cert_id, targets, outcome FROM push_records ORDER BY id")
    assert sorted(r for r in records if r[0] == cert2) == sorted(
        [(cert2, "good-a", "success"), (cert2, "good-b", "success"), (cert2, "bad", "failure")]), records


# --------------------------------------------------------------------------- 11. expiry mail


def test_an_expiring_certificate_is_told_once_by_mail(servers, tmp_path):
    """The expiry reminder reaches a real SMTP server: the server restarted 340 days ahead
    (libfaketime; the certificate lives 365) is within the 30-day threshold, not yet the 14-day
    one. Auto-renew is off, so the expiry stays where it is."""
    with started(SmtpReceiver(tmp_path / "smtp")) as smtp:
        notifier = table("notifiers", name="ops-mail", kind="smtp", account="{account}",
                         server=smtp.address, tls="none", **{"from": "openscm@deploy.test"},
                         to=["ops@deploy.test"], timeout_seconds=10)
        server = start_server(servers, "expiring",
                              lambda acct: notifier.replace("{account}", acct))
        (cert_id,) = issue(server, ["www.expiring.deploy.test"])
        resp = server.v3("PUT", f"/v3/scm/certificates/{cert_id}/auto-renew",
                         {"auto_renew": False})
        assert resp.status == 200, f"auto-renew off: {resp!r}"

        server.env.update(faketime_env("+340d"))
        server.restart()
        wait_until(lambda: smtp.messages(), 60, "the certificate_expiring mail",
                   seen=lambda: ([(j["kind"], j["state"]) for j in jobs(server)], smtp.output()),
                   interval=0.3)
        notes = settled_notifications(server)
        assert [event_of(j) for j in notes] == ["certificate_expiring"], f"notify jobs: {notes}"
        mails = smtp.messages()
        assert len(mails) == 1, f"{len(mails)} mails: {[m['Subject'] for m in mails]}"
        subject = mails[0]["Subject"]
        assert "expiring" in subject.lower() and cert_id in subject, subject
        body = mails[0].get_payload(decode=True).decode()
        assert cert_id in body and "www.expiring.deploy.test" in body, body
