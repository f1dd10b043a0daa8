"""Several servers on one PostgreSQL database, as behind a load balancer: they start together,
bootstrap once, share the master key, see each other's writes, and revocations take effect on all."""
import os
import threading
import time

from conftest import Backend, ServerFactory
from e2e_helpers import push_target_toml

BUY = {"cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
       "effective_time": 1, "domain_numbers": 1, "order_number": 1, "agree_privacy_protection": True}
APPLY = {"domain": "lb.multi.test", "applicant_name": "Tom Smith", "applicant_phone": "13212345678",
         "applicant_email": "tom@example.com", "agree_privacy_protection": True, "domain_method": "DNS",
         "key_algorithm": "EC_P256"}


def eventually(check, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_two_servers_share_one_postgres(openscm_bin, pg_base, tmp_path):
    backend = Backend("postgres", pg_base)
    factory = ServerFactory(openscm_bin, tmp_path, backend)
    try:
        url = backend.new_database_url()
        a = factory.new("a", database_url=url)
        b = factory.new("b", database_url=url)
        # The operator gives both the same master key (32 random bytes, hex, mode 0600), then
        # starts both at once on the empty database.
        key = os.urandom(32).hex() + "\n"
        for s in (a, b):
            path = s.data_dir / "master.key"
            path.write_text(key)
            path.chmod(0o600)
        starters = [threading.Thread(target=s.start) for s in (a, b)]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        made = [s for s in (a, b) if s.credentials_path.exists()]
        assert len(made) == 1, "exactly one server bootstrapped the shared store"
        creds = made[0].credentials
        # The one credential works on both; a certificate bought on one is seen on the other.
        cert = a.v3("POST", "/v3/scm/certificates/buy", BUY, creds=creds)
        assert cert.status == 200, cert.text
        cert_id = cert.json["cert"][0]["cert_id"]
        assert b.v3("GET", f"/v3/scm/certificates/{cert_id}", creds=creds).json["status"] == "PAID"
        assert b.v3("POST", f"/v3/scm/certificates/{cert_id}/apply", APPLY, creds=creds).status == 200
        # A read cached on A follows B's write within the poll interval.
        eventually(lambda: a.v3("GET", f"/v3/scm/certificates/{cert_id}", creds=creds).json["status"] == "ISSUED",
                   "server A sees the issuance made on B")
        exported_a = a.v3("POST", f"/v3/scm/certificates/{cert_id}/export", creds=creds).json
        exported_b = b.v3("POST", f"/v3/scm/certificates/{cert_id}/export", creds=creds).json
        assert exported_a == exported_b and "PRIVATE KEY" in exported_a["private_key"]
        # Ids stay unique when both servers buy at once.
        ids = []
        def buy_many(server):
            for _ in range(5):
                r = server.v3("POST", "/v3/scm/certificates/buy", dict(BUY, order_number=20), creds=creds)
                assert r.status == 200, r.text
                ids.extend(c["cert_id"] for c in r.json["cert"])
        buyers = [threading.Thread(target=buy_many, args=(s,)) for s in (a, b)]
        for t in buyers:
            t.start()
        for t in buyers:
            t.join()
        assert len(ids) == 200 and len(set(ids)) == 200
        # A second credential, revoked through the admin CLI, stops working on both servers.
        account = creds["domain_id"]
        extra = a.admin("credential", "create", "--account", account)
        for s in (a, b):
            assert s.v3("GET", "/v3/scm/certificates", creds=extra).status == 200
        a.admin("credential", "revoke", extra["access_key"], parse=False)
        for s in (a, b):
            assert s.v3("GET", "/v3/scm/certificates", creds=extra).status == 401
    finally:
        factory.close()
        backend.cleanup()
