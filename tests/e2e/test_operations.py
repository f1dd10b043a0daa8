"""Operating the server: graceful SIGTERM, one log line per request, no secrets in logs."""
import re
import signal
import threading
import time

import requests

from e2e_helpers import push_target_toml

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
        return push_target_toml("slow", account=creds["domain_id"], service="WAF", region="cn-north-4",
                                cert_path=out / "c.pem", key_path=out / "k.pem", reload_command=["sleep", "2"])

    server = servers.bootstrap_then_configure("graceful", config)
    cert_id = issued_cert(server, "slow.graceful.test")
    result = {}

    def push():
        result["resp"] = server.v2("POST", f"/scm/cert/{cert_id}/push",
                                   {"service_type": "WAF", "remote_project": "cn-north-4"})

    worker = threading.Thread(target=push)
    worker.start()
    time.sleep(0.5)
    proc = server.proc
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # No new connections once shutting down...
    refused = False
    try:
        requests.get(server.url + "/health", timeout=1)
    except requests.exceptions.RequestException:
        refused = True
    assert refused, "the server still accepted a connection after SIGTERM"
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
    time.sleep(0.2)
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
    assert server.raw("GET", "/v3/scm/certificates").status == 401
    time.sleep(0.2)
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
