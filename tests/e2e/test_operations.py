"""Operating the server: graceful SIGTERM, one log line per request, no secrets in logs."""
import re
import signal
import threading
import time

import requests

from e2e_helpers import push_target_toml, tail, wait_until

BUY = {"cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
       "effective_time": 1, "domain_numbers": 1, "order_number": 1, "agree_privacy_protection": True}


def apply_body(domain, key_algorithm="EC_P256"):
    return {"domain": domain, "applicant_name": "Tom Smith", "applicant_phone": "13212345678",
            "applicant_email": "tom@example.com", "agree_privacy_protection": True,
            "domain_method": "DNS", "key_algorithm": key_algorithm}


def issued_cert(server, domain):
    resp = server.v3("POST", "/v3/scm/certificates/buy", BUY)
    assert resp.status == 200, resp.text
    cert_id = resp.json["cert"][0]["cert_id"]
    resp = server.v3("POST", f"/v3/scm/certificates/{cert_id}/apply", apply_body(domain))
    assert resp.status == 200, resp.text
    return cert_id


def test_sigterm_finishes_requests_in_flight(servers, module_tmp):
    out = module_tmp / "slow-target"
    out.mkdir(exist_ok=True)

    def config(creds):
        # A target whose reload takes 2 s keeps a push request in flight long enough.
        # The reload leaves a mark when it starts, so the test knows the push is in flight.
        return push_target_toml("slow", account=creds["domain_id"], service="WAF", region="cn-north-4",
                                cert_path=out / "c.pem", key_path=out / "k.pem",
                                reload_command=["sh", "-c", f"touch {out / 'reloading'}; sleep 2"])

    server = servers.bootstrap_then_configure("graceful", config)
    cert_id = issued_cert(server, "slow.graceful.test")
    result = {}

    def push():
        result["resp"] = server.v2("POST", f"/scm/cert/{cert_id}/push",
                                   {"service_type": "WAF", "remote_project": "cn-north-4"})

    # The module's directory is shared by both backends' runs: start without the other's mark.
    (out / "reloading").unlink(missing_ok=True)
    worker = threading.Thread(target=push)
    worker.start()
    wait_until(lambda: (out / "reloading").exists(), 20, "the push's reload command to start",
               seen=server.logs)
    proc = server.proc
    proc.send_signal(signal.SIGTERM)

    # No new connections once shutting down...
    def refused():
        try:
            requests.get(server.url + "/health", timeout=1)
        except requests.exceptions.RequestException:
            return True
        return False

    wait_until(refused, 10, "the server to refuse new connections after SIGTERM", seen=server.logs)
    assert result.get("resp") is None, "the push answered before its reload ended"
    # ...but the push in flight completes, and the process exits cleanly.
    worker.join(timeout=20)
    assert result["resp"].status == 200, result["resp"].text
    assert result["resp"].json == {"message": "success"}
    assert proc.wait(timeout=20) == 0
    server.proc = None
    assert (out / "c.pem").exists()
    # Start again: the push is in the history.
    server.start()
    hist = server.v2("GET", f"/scm/cert/{cert_id}/push-history")
    assert [h["push_service"] for h in hist.json["push_history_list"]] == ["WAF"]


def test_one_log_line_per_request_and_no_secrets(servers):
    server = servers.new("logs")
    server.env = {"OPENSCM_LOG": "debug"}
    server.start()
    creds = server.credentials
    cert_id = issued_cert(server, "logs.test")
    exported = server.v3("POST", f"/v3/scm/certificates/{cert_id}/export")
    assert exported.status == 200 and "PRIVATE KEY" in exported.json["private_key"]
    bad = server.v3("POST", "/v3/scm/certificates/buy", dict(BUY, order_number=0))
    assert bad.status == 400
    unauth = server.raw("GET", "/v3/scm/certificates")
    assert unauth.status == 401
    # The access line is written after the answer: wait for the last request's.
    last = unauth.headers["X-Request-Id"]
    wait_until(lambda: f"request_id={last}" in server.stderr_path.read_text(), 10,
               f"the log line of request {last}", seen=lambda: tail(server.stderr_path))
    log = server.stderr_path.read_text()
    for resp, operation, status, code in [
        (exported, "ExportCertificate", 200, None),
        (bad, "SubscribeCertificate", 400, "SCM.0005"),
        (unauth, "ListCertificates", 401, "APIGW.0301"),
    ]:
        rid = resp.headers["X-Request-Id"]
        lines = [line for line in log.splitlines() if f"request_id={rid}" in line]
        assert len(lines) == 1, f"want one line for {rid}, got {lines}"
        line = lines[0]
        assert f"operation={operation}" in line, line
        assert f"status={status}" in line, line
        if code:
            assert f"code={code}" in line, line
        if status != 401:
            assert f"account={creds['domain_id']}" in line, line
    assert "PRIVATE KEY" not in log
    assert creds["secret_key"] not in log
    key_body = exported.json["private_key"].split("-----")[2].strip().splitlines()[0]
    assert key_body not in log
    assert not re.search(r"panicked|RUST_BACKTRACE", log)


def test_logs_to_a_file_carry_no_colour_codes(servers):
    # Without NO_COLOR (the harness sets it for the other servers): the log goes to a file, so
    # it must be plain text all the same.
    server = servers.new("plainlogs")
    server.env = {"NO_COLOR": ""}
    server.start()
    resp = server.raw("GET", "/v3/scm/certificates")
    assert resp.status == 401
    rid = resp.headers["X-Request-Id"]
    wait_until(lambda: f"request_id={rid}" in server.stderr_path.read_text(), 10,
               f"the log line of request {rid}", seen=lambda: tail(server.stderr_path))
    log = server.stderr_path.read_text()
    assert "request_id=" in log
    assert "\x1b[" not in log, log[:500]


def test_sigterm_right_after_start_is_a_clean_stop(servers):
    """A SIGTERM that lands while the server is still starting (or has just started) stops it
    cleanly, exit code 0, rather than killing it."""
    for delay in (0.2, 0.4):
        server = servers.new(f"early-term-{delay}")
        proc = server.spawn()
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, server.logs()
        server.proc = None


def test_a_missing_or_wrong_master_key_says_what_to_do_and_creates_nothing(servers):
    """On a store that is set up already, a missing master key file is not replaced by a new
    one, and a key of another store is refused; both say what is wrong and what to do."""
    import os
    import secrets as _secrets
    import subprocess

    server = servers.new("masterkey")
    server.start()
    server.stop()
    key_file = server.data_dir / "master.key"
    original = key_file.read_text()
    before = sorted(p.name for p in server.data_dir.iterdir())

    def start_fails():
        proc = subprocess.run(server.command(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30, env={**os.environ, "NO_COLOR": "1"})
        assert proc.returncode != 0, proc.stdout + proc.stderr
        return proc.stderr

    key_file.rename(server.data_dir / "master.key.bak")
    err = start_fails()
    assert "master key file" in err and "is missing" in err, err
    assert "Restore the file" in err and "Nothing was changed" in err, err
    assert "internal" not in err, err
    assert not key_file.exists(), "no new key file was left behind"
    # The admin CLI says the same rather than "no store here".
    admin = server.admin("account", "list", check=False, parse=False)
    assert admin.returncode != 0 and "is missing" in admin.stderr, admin.stderr
    assert not key_file.exists()

    key_file.write_text(_secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)
    err = start_fails()
    assert "is not the key the database" in err and "Nothing was changed" in err, err
    assert "internal" not in err, err

    key_file.write_text(original)
    (server.data_dir / "master.key.bak").unlink()
    assert sorted(p.name for p in server.data_dir.iterdir()) == before
    server.start()
    assert server.v3("GET", "/v3/scm/certificates").status == 200


def test_each_401_logs_its_real_reason_and_answers_the_same(servers):
    import datetime as dt

    server = servers.new("authreasons")
    server.start()
    creds = server.credentials
    account = server.create_account("reasons")
    revoked = server.create_credential(account["domain_id"])
    server.admin("credential", "revoke", revoked["access_key"], parse=False)
    unknown = dict(creds, access_key="UNKNOWNAK000000000000")
    wrong_sk = dict(creds, secret_key="x" * 40)
    late = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    cases = [
        (server.v3("GET", "/v3/scm/certificates", creds=unknown), "unknown access key"),
        (server.v3("GET", "/v3/scm/certificates", creds=revoked), "revoked access key"),
        (server.v3("GET", "/v3/scm/certificates", creds=wrong_sk), "bad signature"),
        (server.v3("GET", "/v3/scm/certificates", date=late), "clock skew"),
        (server.raw("GET", "/v3/scm/certificates", headers={"X-Auth-Token": "nonsense"}),
         "unknown or malformed token"),
        (server.raw("GET", "/v3/scm/certificates"), "no signature and no token"),
    ]
    last = cases[-1][0].headers["X-Request-Id"]
    wait_until(lambda: f"request_id={last}" in server.stderr_path.read_text(), 10,
               f"the log line of request {last}", seen=lambda: tail(server.stderr_path))
    log = server.stderr_path.read_text()
    for resp, reason in cases:
        assert resp.status == 401, resp.text
        assert reason not in resp.text
        rid = resp.headers["X-Request-Id"]
        lines = [line for line in log.splitlines() if f"request_id={rid}" in line]
        assert len(lines) == 1 and reason in lines[0], (reason, lines)
    # Unknown key, revoked key and a bad signature read the same to the client.
    assert len({c[0].json["error_msg"] for c in cases[:3]}) == 1


def test_admin_policy_show_account_and_project_list(servers):
    server = servers.new("adminlists")
    server.start()
    account = server.create_account("lists")
    shown = server.admin("policy", "show", "--account", account["domain_id"])
    assert shown["domain_id"] == account["domain_id"] and shown["name"] == "lists"
    assert ".test" in shown["allowed"], shown
    server.admin("policy", "set", "--account", account["domain_id"], "--allow", ".Example.com; .test")
    shown = server.admin("policy", "show", "--account", account["domain_id"])
    assert shown["allowed"] == [".example.com", ".test"], shown
    accounts = server.admin("account", "list")
    assert {"domain_id", "name", "policy"} <= set(accounts[0]), accounts
    assert account["domain_id"] in {a["domain_id"] for a in accounts}
    projects = server.admin("project", "list", "--account", account["domain_id"])
    assert [p["name"] for p in projects] == ["default"], projects
    missing = server.admin("policy", "show", "--account", "0" * 32, check=False, parse=False)
    assert missing.returncode != 0 and "no account" in missing.stderr
