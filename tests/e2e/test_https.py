"""HTTPS: the official SDK over TLS against both modes (the operator's files, reloaded when they
change; a certificate from the built-in serving CA, trusted through DATA_DIR/https-root.pem), a client that
does not trust the CA, the plain-HTTP refusal on a non-loopback address, and credentials.json's
endpoint following a restart on another address."""

import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import SslHandShakeException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ListCertificatesRequest,
    PurchaseCertificateRequestBody,
    ScmClient,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from e2e_helpers import E2EError, Server, free_port


class TlsServer(Server):
    """A server started with extra flags, reached over HTTPS (verified against `ca_file`)."""

    def __init__(self, binary, workdir, args=(), ca_file=None, **kw):
        super().__init__(binary, workdir, **kw)
        self.args = list(args)
        self.ca_file = ca_file  # None: DATA_DIR/https-root.pem (the built-in serving CA)
        self.https = True

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"

    @property
    def trust(self) -> str:
        return str(self.ca_file or self.https_root_path)

    def command(self):
        return super().command() + self.args

    def start(self, timeout: float = 20.0):
        if not self.https:
            return super().start(timeout)
        self.spawn()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                raise E2EError(f"openscm server exited with code {rc}\n{self.logs()}")
            try:
                if Path(self.trust).exists():
                    r = requests.get(self.url + "/health", timeout=1, verify=self.trust)
                    if r.status_code == 200:
                        return self
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.05)
        self._kill()
        raise E2EError(f"not ready over HTTPS after {timeout}s (last: {last})\n{self.logs()}")

    def sdk(self, ca_file=None, endpoint=None) -> ScmClient:
        """The official ScmClient over HTTPS, trusting `ca_file` (default: this server's)."""
        config = HttpConfig.get_default_config()
        config.timeout = (5, 60)
        config.ssl_ca_cert = str(ca_file or self.trust)
        c = self.credentials
        return (
            ScmClient.new_builder()
            .with_http_config(config)
            .with_credentials(GlobalCredentials(c["access_key"], c["secret_key"], c["domain_id"]))
            .with_endpoints([endpoint or c["endpoint"]])
            .build()
        )


def served_certificate(port: int, ca_file) -> x509.Certificate:
    """The certificate the server presents to a new connection (verified against `ca_file`)."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def buy_apply_show(client: ScmClient) -> str:
    order = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="SINGLE_DOMAIN",
        effective_time=1, domain_numbers=1, order_number=1, agree_privacy_protection=True)))
    cert_id = order.cert[0].cert_id
    client.apply_certificate(ApplyCertificateRequest(certificate_id=cert_id, body=ApplyCertificateRequestBody(
        domain="www.https.test", applicant_name="Tom Smith", applicant_phone="13212345678",
        applicant_email="tom@example.com", agree_privacy_protection=True, domain_method="DNS",
        key_algorithm="EC_P256")))
    return client.show_certificate(ShowCertificateRequest(certificate_id=cert_id)).status


# --------------------------------------------------------------------------- a throwaway CA


class ThrowawayCa:
    """A CA made here with `cryptography`, issuing P-256 leaves for localhost and 127.0.0.1."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e throwaway CA")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / "throwaway-ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def leaf(self):
        """(chain PEM, key PEM, serial) of a new leaf."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return chain, key_pem, serial


def replace(path: Path, data: bytes):
    """Writes `path` as a deployment tool would: a new file renamed over the old."""
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)  # key files others may read are refused
    os.replace(tmp, path)


# --------------------------------------------------------------------------- tests


def test_sdk_over_https_with_the_builtin_ca(openscm_bin, tmp_path):
    server = TlsServer(openscm_bin, tmp_path / "builtin", args=["--tls", "builtin"])
    try:
        server.start()
        creds = server.credentials
        assert creds["endpoint"] == f"https://127.0.0.1:{server.port}", creds
        assert buy_apply_show(server.sdk()) == "ISSUED"

        # The served certificate: issued by the built-in CA for localhost and 127.0.0.1.
        cert = served_certificate(server.port, server.https_root_path)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in sans.get_values_for_type(x509.DNSName), sans
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress), sans
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert dt.timedelta(days=29) < life <= dt.timedelta(days=31), life
        # /metrics (over the same TLS listener) reports that certificate's expiry.
        scraped = requests.get(server.url + "/metrics", verify=str(server.https_root_path), timeout=5)
        assert scraped.status_code == 200, scraped.text
        # Every HTTPS answer tells browsers to stay on HTTPS.
        assert scraped.headers.get("Strict-Transport-Security") == "max-age=31536000", scraped.headers
        console = requests.get(server.url + "/console/sign-in", verify=str(server.https_root_path), timeout=5)
        assert console.headers.get("Strict-Transport-Security") == "max-age=31536000", console.headers
        expiry = [line for line in scraped.text.splitlines()
                  if line.startswith("openscm_serving_certificate_expiry_timestamp_seconds ")]
        assert len(expiry) == 1, scraped.text
        assert int(float(expiry[0].split()[1])) == int(cert.not_valid_after_utc.timestamp())
        out = server.stdout_path.read_text()
        assert "built-in CA" in out and "in memory only" in out and "https://" in out, out
        assert str(server.https_root_path) in out, out
        # The serving CA issues nothing else, and no account's root is the HTTPS root: a client
        # trusting the bootstrap account's roots (ca-root.pem) only refuses the server.
        with pytest.raises(ssl.SSLError):
            served_certificate(server.port, server.ca_root_path)

        # A client that does not trust the CA (the system's roots only, or another CA) fails.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.url + "/health", timeout=5)
        other = ThrowawayCa(tmp_path)
        with pytest.raises(SslHandShakeException) as refused:
            server.sdk(ca_file=other.path).list_certificates(ListCertificatesRequest())
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value), refused.value
        # Plain HTTP to the TLS port gets no API.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{server.port}/health", timeout=5)
    finally:
        server.close()


def test_sdk_over_https_with_files_reloaded_on_change(openscm_bin, tmp_path):
    ca = ThrowawayCa(tmp_path)
    cert_file, key_file = tmp_path / "site.crt", tmp_path / "site.key"
    chain, key, first_serial = ca.leaf()
    cert_file.write_bytes(chain)
    key_file.write_bytes(key)
    os.chmod(key_file, 0o600)  # a key file others may read is refused
    workdir = tmp_path / "files"
    server = TlsServer(
        openscm_bin, workdir, ca_file=ca.path,
        args=["--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)],
        config_text="[tls]\nreload_seconds = 1\n",
    )
    try:
        server.start()
        assert server.credentials["endpoint"] == f"https://127.0.0.1:{server.port}"
        client = server.sdk()
        assert buy_apply_show(client) == "ISSUED"
        assert served_certificate(server.port, ca.path).serial_number == first_serial

        # New files: the next connection gets the new certificate, no restart.
        chain, key, second_serial = ca.leaf()
        replace(key_file, key)
        replace(cert_file, chain)
        deadline = time.monotonic() + 15
        while served_certificate(server.port, ca.path).serial_number != second_serial:
            assert time.monotonic() < deadline, f"new certificate not served\n{server.logs()}"
            time.sleep(0.2)
        assert server.proc.poll() is None
        assert server.sdk().list_certificates(ListCertificatesRequest()).total_count == 1

        # A broken pair (a certificate without its key): logged, the previous one still served.
        broken, _, _ = ca.leaf()
        replace(cert_file, broken)
        deadline = time.monotonic() + 15
        while "do not load" not in server.stderr_path.read_text():
            assert time.monotonic() < deadline, f"broken pair not reported\n{server.logs()}"
            time.sleep(0.2)
        assert served_certificate(server.port, ca.path).serial_number == second_serial
        assert server.sdk().list_certificates(ListCertificatesRequest()).total_count == 1
    finally:
        server.close()


def test_plain_http_is_refused_on_a_non_loopback_address(openscm_bin, tmp_path):
    port = free_port()
    cmd = [openscm_bin, "server", "--listen", f"0.0.0.0:{port}", "--data-dir", str(tmp_path / "data")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode != 0, proc
    assert "not a loopback address and TLS is off" in proc.stderr, proc.stderr
    assert "allow_plain_http = true" in proc.stderr, proc.stderr
    assert not (tmp_path / "data").exists(), "refused before anything was created"

    # Allowed explicitly (a TLS-terminating proxy in front): it serves.
    server = Server(openscm_bin, tmp_path / "allowed", port=port)
    server.command = lambda: [openscm_bin, "server", "--listen", f"0.0.0.0:{port}",
                              "--data-dir", str(server.data_dir), "--allow-plain-http"]
    try:
        server.start()
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
    finally:
        server.close()


def test_credentials_endpoint_follows_a_restart_on_another_address(openscm_bin, tmp_path):
    server = TlsServer(openscm_bin, tmp_path / "moves")
    first = server.port
    server.https = False  # plain HTTP first
    server.start()
    before = server.credentials
    assert before["endpoint"] == f"http://127.0.0.1:{first}", before
    server.stop()

    # Another port, with TLS on: credentials.json names the new endpoint; nothing else changed.
    server.port = free_port()
    server.args = ["--tls", "builtin"]
    server.https = True
    server.start()
    after = server.credentials
    assert after["endpoint"] == f"https://127.0.0.1:{server.port}", after
    assert {k: v for k, v in after.items() if k != "endpoint"} == \
        {k: v for k, v in before.items() if k != "endpoint"}
    assert (server.credentials_path.stat().st_mode & 0o777) == 0o600
    out = server.stdout_path.read_text()
    assert f"now names the endpoint https://127.0.0.1:{server.port}" in out, out
    assert f"http://127.0.0.1:{first}" in out, out
    # The SDK, configured from the file alone, reaches the server.
    assert server.sdk().list_certificates(ListCertificatesRequest()).total_count == 0
    server.stop()

    # A host name for --listen: resolved, said, and the endpoint uses the name.
    server.port = free_port()
    server.host_override = f"localhost:{server.port}"
    server.command = lambda: [openscm_bin, "server", "--listen", server.host_override,
                              "--data-dir", str(server.data_dir), "--tls", "builtin"]
    try:
        server.start()
        assert server.credentials["endpoint"] == f"https://localhost:{server.port}"
        assert "localhost resolves to 127.0.0.1" in server.stdout_path.read_text()
        assert server.sdk().list_certificates(ListCertificatesRequest()).total_count == 0
    finally:
        server.close()


def test_the_cli_over_https_trusts_the_builtin_ca_from_its_profile(openscm_bin, tmp_path):
    """`openscm configure --from-credentials` on an HTTPS server picks up https-root.pem beside
    credentials.json, and the client commands then work over TLS; without the CA they fail
    with the network/TLS exit code (4)."""
    import json as _json
    import os as _os
    import subprocess as _subprocess

    server = TlsServer(openscm_bin, tmp_path / "cli-tls", args=["--tls", "builtin"])
    try:
        server.start()
        profile = tmp_path / "cli-credentials.toml"
        base = {k: v for k, v in _os.environ.items() if not k.startswith("OPENSCM_")}
        base.update({"OPENSCM_CLI_CONFIG": str(profile), "NO_COLOR": "1"})

        def cli(*args, env=None):
            return _subprocess.run([openscm_bin, *map(str, args)], capture_output=True,
                                   text=True, timeout=60, env={**base, **(env or {})})

        done = cli("configure", "--from-credentials", server.credentials_path, "-o", "json")
        assert done.returncode == 0, done.stderr
        assert "https-root.pem" in profile.read_text(), profile.read_text()
        bought = cli("cert", "buy", "-o", "json")
        assert bought.returncode == 0, bought.stderr
        cert_id = _json.loads(bought.stdout)["cert"][0]["cert_id"]
        listed = cli("cert", "list", "-o", "json")
        assert listed.returncode == 0 and cert_id in listed.stdout, listed.stderr
        # Another CA file: the handshake fails, exit code 4.
        other = ThrowawayCa(tmp_path)
        refused = cli("cert", "list", "-o", "json", env={"OPENSCM_CA_FILE": str(other.path)})
        assert refused.returncode == 4, (refused.stdout, refused.stderr)
    finally:
        server.close()
