"""Automatic renewal end to end, with the server living 300 days ahead (libfaketime; test-infra.md
section 7c): a certificate issued and pushed today is due by then (a third of its 365 days left),
and the server renews it by itself.

- Once per storage backend: a certificate pushed to a real nginx is renewed by the sweep the
  server runs at its start (version 2: reason `renewal`, a new serial, the same names, a new key),
  and the new version is pushed to the same nginx without anyone asking; nginx serves it, and it
  verifies against the account's root at the shifted time.
- Two servers on one PostgreSQL renew 1,000 due certificates, one of them killed by SIGKILL
  halfway: every certificate gets exactly one version 2, from exactly one `renew` job.

The SDK signs with the real time, which a shifted server refuses (out of the clock skew window):
under the shift, the tests read through `openscm admin cert history`, SQL, TLS handshakes and raw
requests signed by the SDK's signer with a shifted `X-Sdk-Date`.
"""

import datetime as dt
import re
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ExportCertificateRequest,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from fixtures import Backend, ServerFactory
from e2e_helpers import (
    dns_sans,
    faketime_env,
    load_certs,
    openssl_verify,
    spki,
    wait_until,
)

SHIFT_DAYS = 300
APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com", agree_privacy_protection=True)


def shifted_now() -> dt.datetime:
    """The time of a server started with `faketime_env(f"+{SHIFT_DAYS}d")`."""
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=SHIFT_DAYS)


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 time of `admin cert history` (fractions cut to microseconds)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, f"not an RFC 3339 time: {text!r}"
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


def der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(certs) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


# --------------------------------------------------------------------------- one certificate, nginx


@pytest.fixture(scope="module")
def server(servers, nginx_target_toml):
    """One server per backend with a push target (ELB, cn-north-4) that deploys to nginx."""
    return servers.bootstrap_then_configure(
        "renewal", lambda creds: nginx_target_toml(creds) + "\n[jobs]\npoll_millis = 100\n")


def test_a_pushed_certificate_renews_itself_and_nginx_gets_the_new_version(server, nginx, backend,
                                                                          tmp_path):
    client = server.sdk_client()
    domain, san = f"renew-{backend.name}.test", f"www.renew-{backend.name}.test"
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="MULTI_DOMAIN",
        effective_time=1, domain_numbers=2, order_number=1, agree_privacy_protection=True,
    )))
    cert_id = bought.cert[0].cert_id
    client.apply_certificate(ApplyCertificateRequest(
        certificate_id=cert_id,
        body=ApplyCertificateRequestBody(domain=domain, sans=san, domain_method="DNS", **APPLICANT),
    ))
    assert client.show_certificate(ShowCertificateRequest(certificate_id=cert_id)).status == "ISSUED"
    v1 = client.export_certificate(ExportCertificateRequest(certificate_id=cert_id))
    v1_leaf = load_certs(v1.certificate)[0]
    v1_key = serialization.load_pem_private_key(v1.private_key.encode(), password=None)
    assert dns_sans(v1_leaf) == {domain, san}

    resp = server.v2("POST", f"/scm/cert/{cert_id}/push",
                     {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert (resp.status, resp.json) == (200, {"message": "success"}), resp
    nginx.wait_for_cert(domain, der(v1_leaf), cafile=str(server.ca_root_path))

    # Version 1 falls due when a third of its lifetime is left, spread over a tenth of that.
    first = server.admin("cert", "history", cert_id)["versions"]
    assert [(v["seq"], v["reason"]) for v in first] == [(1, "issued")], first
    assert int(first[0]["serial"], 16) == v1_leaf.serial_number, (first, v1_leaf.serial_number)
    not_before, not_after = v1_leaf.not_valid_before_utc, v1_leaf.not_valid_after_utc
    window = (not_after - not_before) * 0.33
    renew_at = parse_time(first[0]["renew_at"])
    slack = dt.timedelta(seconds=1)
    assert not_after - window - slack <= renew_at <= not_after - window + window / 10 + slack, (
        first[0], not_before, not_after)
    assert renew_at < shifted_now() - dt.timedelta(days=30), "version 1 must be due after the shift"

    # The same server, 300 days later: the sweep at its start finds version 1 due.
    server.stop()
    server.env.update(faketime_env(f"+{SHIFT_DAYS}d"))
    server.start()

    def history():
        return server.admin("cert", "history", cert_id)

    renewed = wait_until(lambda: next((v for v in history()["versions"] if v["seq"] == 2), None),
                         60, "version 2 in `admin cert history`", seen=history)
    assert renewed["reason"] == "renewal", renewed
    assert renewed["serial"] != first[0]["serial"], renewed
    assert abs(parse_time(renewed["not_before"]) - shifted_now()) < dt.timedelta(hours=1), renewed
    assert parse_time(renewed["renew_at"]) > shifted_now() + dt.timedelta(days=200), renewed

    # The new version goes to the nginx the previous one was pushed to, by itself.
    def served_serial(served: bytes) -> str:
        return format(x509.load_der_x509_certificate(served).serial_number, "x")

    def served_v2():
        served = nginx.served_cert(domain)
        return served if int(served_serial(served), 16) == int(renewed["serial"], 16) else None

    v2_der = wait_until(served_v2, 30, f"nginx to serve version 2 (serial {renewed['serial']})",
                        seen=lambda: f"serial {served_serial(nginx.served_cert(domain))}; history {history()}")
    nginx.wait_for_cert(domain, v2_der)
    nginx.wait_for_cert(san, v2_der)
    v2_leaf = x509.load_der_x509_certificate(v2_der)
    assert dns_sans(v2_leaf) == {domain, san}
    assert v2_leaf.subject == v1_leaf.subject
    assert v2_leaf.not_valid_before_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=SHIFT_DAYS - 1)
    assert spki(v2_leaf) != spki(v1_leaf), "the renewal kept the old key"

    # What the push wrote: the new leaf and its chain, and a new key of the same kind.
    written = load_certs(nginx.cert_path.read_bytes())
    assert written[0] == v2_leaf and len(written) >= 2, written
    key = serialization.load_pem_private_key(nginx.key_path.read_bytes(), password=None)
    assert spki(key) == spki(v2_leaf)
    assert type(key) is type(v1_key) and key.key_size == v1_key.key_size
    openssl_verify(tmp_path, server.ca_root_path, pem(written[:1]), pem(written[1:]), attime=shifted_now())

    # Through the API, signed at the server's time: the export is version 2 with its key, and the
    # push history holds the renewal's push, newest first.
    exported = server.v3("POST", f"/v3/scm/certificates/{cert_id}/export", date=shifted_now())
    assert exported.status == 200, exported
    assert load_certs(exported.json["certificate"]) == [v2_leaf]
    exported_key = serialization.load_pem_private_key(exported.json["private_key"].encode(), password=None)
    assert spki(exported_key) == spki(v2_leaf)
    pushes = server.v2("GET", f"/scm/cert/{cert_id}/push-history", date=shifted_now())
    assert pushes.status == 200, pushes
    entries = pushes.json["push_history_list"]
    assert len(entries) == 2, entries
    assert all(e["push_service"] == "ELB" and e["push_remote_project"] == "cn-north-4" for e in entries)
    newest = dt.datetime.fromtimestamp(int(entries[0]["push_time"]) / 1000, dt.timezone.utc)
    assert abs(newest - shifted_now()) < dt.timedelta(minutes=5), entries

    events = [e["event"] for e in history()["events"]]
    assert events.count("issued") == 1 and events.count("renewed") == 1, events
    assert [v["seq"] for v in history()["versions"]] == [2, 1]


# --------------------------------------------------------------------------- 1,000 certificates, two servers


CLUSTER_CONFIG = """
[jobs]
concurrency = 16
poll_millis = 100
# A killed server's claimed jobs go back to the queue when their lease runs out.
lease_seconds = 5

# 1,000 applications through two servers as fast as eight clients go: not what the account's
# request rate limit is for.
[limits]
rate_limit_per_second = 0
"""
COUNT = 1000
PER_ORDER = 100  # the v3 API's most per order


def test_two_servers_renew_a_thousand_certificates_each_once_through_a_sigkill(openscm_bin, pg_base,
                                                                             tmp_path):
    backend = Backend("postgres", pg_base)
    factory = ServerFactory(openscm_bin, tmp_path, backend)
    try:
        a, b, creds = factory.cluster_of_two("bulk-", CLUSTER_CONFIG)
        db = a.database_url.rsplit("/", 1)[1]

        def sql(query: str) -> str:
            return pg_base.psql(db, query).strip()

        ids = []
        for _ in range(COUNT // PER_ORDER):
            r = a.v3("POST", "/v3/scm/certificates/buy", {
                "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
                "effective_time": 1, "domain_numbers": 1, "order_number": PER_ORDER,
                "agree_privacy_protection": True}, creds=creds)
            assert r.status == 200, r
            ids.extend(c["cert_id"] for c in r.json["cert"])
        assert len(set(ids)) == COUNT

        # Applied through both servers at once; EC keys keep the issuance cheap.
        failures = []

        def apply_all(server, share):
            for n, cert_id in share:
                r = server.v3("POST", f"/v3/scm/certificates/{cert_id}/apply", {
                    "domain": f"c{n}.bulk.test", "domain_method": "DNS", "key_algorithm": "EC_P256",
                    **APPLICANT}, creds=creds)
                if r.status != 200:
                    failures.append((cert_id, r))

        numbered = list(enumerate(ids))
        workers = [threading.Thread(target=apply_all, args=((a, b)[i % 2], numbered[i::8]))
                   for i in range(8)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert not failures, failures[:5]
        assert sql("SELECT count(*) FROM certificate_versions") == str(COUNT)

        # Both 300 days later, at once: the sweep queues a renewal of every certificate.
        for s in (a, b):
            s.stop()
            s.env.update(faketime_env(f"+{SHIFT_DAYS}d"))
        starters = [threading.Thread(target=s.start) for s in (a, b)]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        assert a.proc is not None and b.proc is not None, "a server did not start (see its log)"

        def renewed() -> int:
            return int(sql("SELECT count(*) FROM certificate_versions WHERE seq = 2"))

        wait_until(lambda: renewed() >= COUNT // 2, 90, f"{COUNT // 2} renewals",
                   seen=lambda: f"{renewed()} renewed; jobs: "
                                f"{sql('SELECT kind, state, count(*) FROM jobs GROUP BY kind, state')}",
                   interval=0.005)
        a.proc.kill()
        a.proc.wait(timeout=10)
        a.proc = None
        at_kill = renewed()
        assert at_kill < COUNT, f"all {COUNT} were renewed before the kill: nothing was cut short"
        # The renewals the killed server was running: they must run again, on the survivor.
        worker = re.search(r'listening .*worker="([^"]+)"', a.stderr_path.read_text())
        assert worker, f"no worker id in the log of {a.workdir.name}"
        cut_short = sql(f"SELECT id FROM jobs WHERE kind = 'renew' AND state = 'running' "
                        f"AND lease_owner = '{worker.group(1)}'").split()
        assert cut_short, "the killed server held no renew job: the kill cut nothing short"

        wait_until(lambda: renewed() == COUNT, 180, f"all {COUNT} certificates renewed by the survivor",
                   seen=lambda: f"{renewed()} renewed ({at_kill} at the kill); jobs: "
                                f"{sql('SELECT kind, state, count(*) FROM jobs GROUP BY kind, state')}")
        # Each renewal job ends (those the killed server held too, once their lease ran out).
        wait_until(lambda: sql("SELECT count(*) FROM jobs WHERE kind = 'renew' AND state <> 'done'") == "0",
                   60, "every renew job done",
                   seen=lambda: sql("SELECT state, count(*) FROM jobs WHERE kind = 'renew' GROUP BY state"))

        cut = ",".join(cut_short)
        assert sql(f"SELECT count(*) FROM jobs WHERE id IN ({cut}) AND attempts >= 2") == str(len(cut_short)), (
            "a renewal cut short by the kill did not run again: "
            + sql(f"SELECT id, state, attempts FROM jobs WHERE id IN ({cut})"))
        assert sql("SELECT cert_id, count(*) FROM certificate_versions GROUP BY cert_id "
                   "HAVING count(*) <> 2") == "", "a certificate without exactly two versions"
        assert sql("SELECT count(*) FROM certificate_versions WHERE seq = 2 AND reason = 'renewal'") == str(COUNT)
        assert sql("SELECT count(DISTINCT serial_hex) FROM certificate_versions") == str(2 * COUNT)
        assert sql("SELECT count(*) FROM certificates WHERE current_version = 2") == str(COUNT)
        assert sql("SELECT dedupe_key, count(*) FROM jobs WHERE kind = 'renew' "
                   "GROUP BY dedupe_key HAVING count(*) <> 1") == "", "a renewal queued twice"
        keys = sql("SELECT dedupe_key FROM jobs WHERE kind = 'renew'").split()
        assert sorted(keys) == sorted(f"renew:{i}:1" for i in ids), "renew jobs are not one per certificate"
        # Both servers renewed: the kill cut one short in the middle of its work.
        renewal_line = re.compile(r"certificate version issued .*version=2 .*reason=\"?renewal\b")
        for s in (a, b):
            lines = (s.stdout_path.read_text() + s.stderr_path.read_text()).splitlines()
            assert any(renewal_line.search(line) for line in lines), f"{s.workdir.name} renewed nothing"
    finally:
        factory.close()
        backend.cleanup()
