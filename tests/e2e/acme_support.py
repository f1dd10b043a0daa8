"""The real peers of OpenSCM's ACME issuance, for the e2e tests and the ACME benchmark
(test-infra.md sections 1, 2 and 7b):

- `Named`: BIND 9 (Debian `bind9`) authoritative for `shop.test.` on a free loopback port; every
  name under it (and the apex) is A 127.0.0.1, so Pebble's validator reaches an http-01 responder
  on loopback for any name; RFC 2136 updates of TXT records are allowed with the TSIG key
  `openscm.` (hmac-sha256, a BIND key file of mode 0600: what an issuer's `dns01` table names).
- `Pebble`: Debian's /usr/bin/pebble 2.4.0 with real validation (never PEBBLE_VA_ALWAYS_VALID),
  resolving through a `Named`, its listener certificate issued by a `ListenerCA` (the file
  OpenSCM's `trust_roots_file` points at); optionally with External Account Binding required.
- `AriStandIn`: a directory that is Pebble's plus `renewalInfo`, and the renewal-info resource
  (RFC 9773), because Pebble 2.4.0 has no ARI; optionally also a proxy in front of Pebble that
  reflects an order's `replaces` as RFC 9773 requires.
- `RefusedPort`: a directory URL on a port where nothing listens (a CA that is down).
- `AcmeTestClient`: a minimal RFC 8555 client, only so that the harness's own tests can prove
  the components work without OpenSCM (and fast: lego waits 5 s per name).

Fixtures (imported by fixtures.py): `acme_listener_ca` and `named` (one per run),
`make_pebble(http_port=None, eab=False, nonce_reject=0)` and `make_ari_standin(pebble,
reflect_replaces=False)`
(per test, stopped at its end).
"""

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components import Component, free_dns_port, started
from e2e_helpers import (E2EError, ServedInThread, free_port, make_csr, port_open, require_tool,
                         wait_until)

ZONE = "shop.test."
TSIG_KEY_NAME = "openscm."
TSIG_ALGORITHM = "hmac-sha256"

# The Debian example's EAB keys (test-infra.md section 1): kid -> base64url HMAC key.
EAB_KEYS = {
    "kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
    "kid-2": "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH",
}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session(verify) -> requests.Session:
    """A requests session of its own: no proxy from the environment between us and loopback."""
    s = requests.Session()
    s.trust_env = False
    s.verify = str(verify)
    return s


def _write_secret(path: Path, text: str):
    """Writes `text` to `path`, readable by its owner only from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


class _Timed:
    """Records how long `start()` took (`start_seconds`), for the reports of the harness, and
    starts again on new ports (up to 3 tries) when a port chosen free was taken by another
    program before the component could bind it (what the program says then: `port_clash`)."""

    start_seconds = None
    port_clash = ("address already in use", "unable to listen on any configured interfaces")

    def reassign_ports(self):
        raise NotImplementedError

    def start(self, timeout: float = 15.0):
        t0 = time.monotonic()
        for attempt in range(3):
            try:
                result = super().start(timeout=timeout)
                break
            except E2EError as exc:
                if attempt == 2 or not any(m in str(exc) for m in self.port_clash):
                    raise
                self.reassign_ports()
        self.start_seconds = time.monotonic() - t0
        return result


# --------------------------------------------------------------------------- listener CA


class ListenerCA:
    """The CA of the HTTPS listeners of Pebble (ACME and management APIs) and of the ARI
    stand-in, made with `cryptography` (EC P-256, 10 years). `pem_path` is the file a client
    trusts (OpenSCM's `trust_roots_file`, lego's LEGO_CA_CERTIFICATES). It is not Pebble's
    issuing root: that one comes from Pebble's management API (`Pebble.issuing_roots()`)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openscm-e2e ACME listener CA")])
        now = _dt.datetime.now(_dt.timezone.utc)
        self._name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.pem_path = self.root / "listener-ca.pem"
        self.pem_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue_server_cert(self, directory: Path, stem: str = "listener"):
        """A server certificate for localhost, 127.0.0.1 and ::1 (EC P-256): (cert path, key path),
        the key file of mode 0600."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _dt.datetime.now(_dt.timezone.utc)
        import ipaddress
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_secret(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()).decode())
        return cert_path, key_path


# --------------------------------------------------------------------------- BIND


NAMED_CONF = """\
include "{openscm_key}";
include "{harness_key}";
options {{
  directory "{D}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  pid-file "{D}/named.pid";
  session-keyfile "{D}/session.key";
  managed-keys-directory "{D}";
  recursion no;
  dnssec-validation no;
  notify no;
}};
controls {{ }};
zone "{zone}" {{
  type primary;
  file "{D}/zone.db";
  // OpenSCM's key may change TXT records only, anywhere in the zone (_acme-challenge.*);
  // the harness's own key may add anything (A records for the wildcard gotcha below).
  update-policy {{ grant {key_name} zonesub TXT; grant {harness_key_name} zonesub ANY; }};
}};
"""

ZONE_DB = """\
$TTL 60
@   IN SOA ns.{zone} admin.{zone} (1 60 60 600 60)
    IN NS  ns.{zone}
    IN A   127.0.0.1
ns  IN A   127.0.0.1
*   IN A   127.0.0.1
"""


class Named(_Timed, Component):
    """BIND 9's `named` (Debian `bind9`, 9.18; test-infra.md section 7b) in the foreground on a
    free 127.0.0.1 port (UDP and TCP), authoritative for `shop.test.` and nothing else (no
    recursion, no DNSSEC):

    - the apex and every name under it (`*.shop.test.`) are A 127.0.0.1, AAAA nothing, so Pebble's
      validator (`-dnsserver`) connects to loopback for any http-01 name;
    - RFC 2136 updates signed with TSIG key `key_name` (`openscm.`, `algorithm` hmac-sha256) may
      add and delete TXT records anywhere in the zone; `key_path` is that key as `tsig-keygen`
      wrote it (`key "openscm." { algorithm hmac-sha256; secret "..."; };`, mode 0600), a file
      OpenSCM's `tsig_secret_file` and `nsupdate -k` both read. Unsigned updates are refused.

    Gotcha (RFC 4592): while `_acme-challenge.www.shop.test.` has a TXT record, `www.shop.test.`
    exists as an empty non-terminal and the wildcard no longer answers its A query (NODATA), so an
    http-01 validation of that same name fails until the TXT record is deleted. A test that needs
    both at once adds an explicit A record with `add_a` (the harness's own key).

    Ready when its log says `running` and a SOA query answers."""

    name = "named"

    def __init__(self, root: Path, zone: str = ZONE):
        super().__init__(root)
        self.binary = require_tool("named")
        self.zone = zone.rstrip(".") + "."
        self.port = free_dns_port()
        self.key_name = TSIG_KEY_NAME
        self.algorithm = TSIG_ALGORITHM
        self.harness_key_name = "openscm-harness."
        self.key_path = self.root / "tsig-openscm.key"
        self.harness_key_path = self.root / "tsig-harness.key"
        for name, path in ((self.key_name, self.key_path), (self.harness_key_name, self.harness_key_path)):
            keygen = subprocess.run([require_tool("tsig-keygen"), "-a", self.algorithm, name],
                                    capture_output=True, text=True)
            if keygen.returncode != 0:
                raise E2EError(f"tsig-keygen failed: {keygen.stderr}")
            _write_secret(path, keygen.stdout)
        self.conf_path = self.root / "named.conf"
        (self.root / "zone.db").write_text(ZONE_DB.format(zone=self.zone))
        self._write_conf()

    def _write_conf(self):
        self.conf_path.write_text(NAMED_CONF.format(
            D=self.root, port=self.port, zone=self.zone, key_name=self.key_name,
            harness_key_name=self.harness_key_name, openscm_key=self.key_path,
            harness_key=self.harness_key_path))

    def reassign_ports(self):
        self.port = free_dns_port()
        self._write_conf()

    @property
    def addr(self) -> str:
        """`127.0.0.1:<port>`: Pebble's `-dnsserver`, an issuer's `dns01.server`, a resolver."""
        return f"127.0.0.1:{self.port}"

    def secret(self) -> str:
        """The base64 TSIG secret of `key_name` (for a client that wants it inline; never log it)."""
        m = re.search(r'secret "([^"]+)"', self.key_path.read_text())
        if not m:
            raise E2EError(f"no secret in {self.key_path}")
        return m.group(1)

    def dns01_toml(self) -> str:
        """The inline TOML table of an issuer's `dns01` for this server."""
        return (f'{{ kind = "rfc2136", server = "{self.addr}", zone = "{self.zone}", '
                f'tsig_key_name = "{self.key_name}", tsig_algorithm = "{self.algorithm}", '
                f'tsig_secret_file = "{self.key_path}" }}')

    # ---- the lifecycle
    def command(self):
        # -g: foreground, logs to stderr, as the user who runs the tests.
        return [self.binary, "-g", "-c", str(self.conf_path)]

    def check(self):
        result = subprocess.run([require_tool("named-checkconf"), "-z", str(self.conf_path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise E2EError(f"named-checkconf failed: {result.stdout}{result.stderr}")

    def ready(self) -> bool:
        # "running" comes after "all zones loaded"; a query before that is SERVFAIL.
        try:
            said = any(line.endswith(" running") for line in self.stderr_path.read_text().splitlines())
        except OSError:
            return False
        return said and port_open(self.port) and bool(self.dig("SOA", self.zone, check=False))

    # ---- queries and updates
    def dig(self, rtype: str, name: str, check: bool = True) -> list:
        """What `dig +short` prints for `rtype` at `name` here, one entry per line, sorted."""
        result = subprocess.run(
            [require_tool("dig"), "+short", "+time=2", "+tries=2", "@127.0.0.1", "-p", str(self.port),
             rtype, name], capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            if not check:
                return []
            raise E2EError(f"dig {rtype} {name} failed: {result.stdout}{result.stderr}\n{self.output()}")
        return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())

    def txt(self, name: str) -> list:
        """The TXT values at `name` (each record's strings joined, quotes removed), sorted."""
        values = []
        for line in self.dig("TXT", name):
            values.append("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', line)))
        return sorted(values)

    def update(self, commands: str, key: str = "openscm", check: bool = True):
        """One RFC 2136 update with `nsupdate -k` (`commands` in nsupdate's language, e.g.
        `update add x.shop.test. 60 TXT "v"`), signed with OpenSCM's key (`key="openscm"`), the
        harness's (`"harness"`) or none (`None`). Returns the CompletedProcess; with `check`, fails
        unless the server applied it."""
        args = [require_tool("nsupdate")]
        if key is not None:
            args += ["-k", str(self.key_path if key == "openscm" else self.harness_key_path)]
        script = f"server 127.0.0.1 {self.port}\nzone {self.zone}\n{commands}\nsend\n"
        result = subprocess.run(args, input=script, capture_output=True, text=True, timeout=20)
        if check and result.returncode != 0:
            raise E2EError(f"nsupdate failed ({result.returncode}): {result.stdout}{result.stderr}\n"
                           f"{self.output()}")
        return result

    def add_txt(self, name: str, value: str, ttl: int = 60):
        self.update(f'update add {_absolute(name)} {ttl} TXT "{value}"')

    def delete_txt(self, name: str):
        self.update(f"update delete {_absolute(name)} TXT")

    def add_a(self, name: str, address: str = "127.0.0.1", ttl: int = 60):
        """An explicit A record (with the harness's key: OpenSCM's may change TXT only)."""
        self.update(f"update add {_absolute(name)} {ttl} A {address}", key="harness")


def _absolute(name: str) -> str:
    return name.rstrip(".") + "."


# --------------------------------------------------------------------------- Pebble

_PEBBLE_ENV = ("PEBBLE_VA_NOSLEEP", "PEBBLE_VA_SLEEPTIME", "PEBBLE_VA_ALWAYS_VALID",
               "PEBBLE_WFE_NONCEREJECT", "PEBBLE_AUTHZREUSE", "PEBBLE_CHAIN_LENGTH",
               "PEBBLE_ALTERNATE_ROOTS", "PEBBLE_WFE_ORDERS_PER_PAGE")

# Pebble's log lines (2.4.0), one per event.
NEW_ORDER_REQUEST_LINE = "POST /order-plz -> calling handler()"
ORDER_ADDED = re.compile(r'Added order "([^"]+)" to the db')
ISSUED = re.compile(r"Issued certificate serial ([0-9a-f]+) for order (\S+)")


class Pebble(_Timed, Component):
    """Debian's Pebble 2.4.0 (test-infra.md section 1, Mode B) on free loopback ports, validating
    for real: its VA resolves names with `-dnsserver <named>` and connects to port `http_port`
    for http-01 (where OpenSCM's http-01 listener, or another responder, listens; Pebble itself
    does not listen there). PEBBLE_VA_NOSLEEP=1 and PEBBLE_AUTHZREUSE=0 always;
    PEBBLE_WFE_NONCEREJECT=`nonce_reject` (0 by default; `None` keeps Pebble's 5 % badNonce).
    With `eab=True` an account needs External Account Binding: `eab_kid` ("kid-1"),
    `eab_hmac_key` (its base64url HMAC key) and `eab_key_file` (that key and a newline, mode 0600).

    State is in memory: every start has new issuing roots, no accounts, no orders. Ready when the
    directory answers over HTTPS trusted by `trust_roots_file` (the listener CA's PEM)."""

    name = "pebble"

    def __init__(self, root: Path, *, listener_ca: ListenerCA, dns_server: str, http_port: int = None,
                 eab: bool = False, nonce_reject=0, tls_port: int = None):
        super().__init__(root)
        self.binary = require_tool("pebble")
        self.listener_ca = listener_ca
        self.dns_server = dns_server
        self.acme_port = free_port()
        self.management_port = free_port()
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
        self.eab = eab
        self.nonce_reject = nonce_reject
        self.cert_path, self.key_path = listener_ca.issue_server_cert(self.root)
        self.config_path = self.root / "pebble-config.json"
        self.eab_kid = self.eab_hmac_key = self.eab_key_file = None
        if eab:
            self.eab_kid = "kid-1"
            self.eab_hmac_key = EAB_KEYS["kid-1"]
            self.eab_key_file = self.root / "eab-kid-1.key"
            _write_secret(self.eab_key_file, self.eab_hmac_key + "\n")
        self._write_config()
        self.http = _session(self.trust_roots_file)

    def reassign_ports(self):
        # Only the ports Pebble binds: http_port and tls_port are the caller's (or nobody's).
        self.acme_port, self.management_port = free_port(), free_port()
        self._write_config()

    def _write_config(self):
        config = {
            "listenAddress": f"127.0.0.1:{self.acme_port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.cert_path),
            "privateKey": str(self.key_path),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.eab,
        }
        if self.eab:
            config["externalAccountMACKeys"] = dict(EAB_KEYS)
        self.config_path.write_text(json.dumps({"pebble": config}, indent=2))

    @property
    def trust_roots_file(self) -> Path:
        """The listener CA's PEM: what a client of the ACME API trusts."""
        return self.listener_ca.pem_path

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    @property
    def http01_listen(self) -> str:
        """`[acme] http01_listen` for OpenSCM: where Pebble's validator connects for http-01."""
        return f"127.0.0.1:{self.http_port}"

    def issuer_toml(self, name: str = "pebble", *, challenges=("http-01", "dns-01"),
                    dns01: str = None, directory_url: str = None, extra: str = "") -> str:
        """An `[[issuers]]` table (docs/issuers.md) for this Pebble: its directory (or
        `directory_url`, e.g. an AriStandIn's), `trust_roots_file`, EAB when required, `dns01` (an
        inline table such as `Named.dns01_toml()`) and `extra` lines as given."""
        lines = ["[[issuers]]", f'name = "{name}"', 'kind = "acme"',
                 f'directory_url = "{directory_url or self.directory_url}"',
                 f'trust_roots_file = "{self.trust_roots_file}"',
                 "challenges = [" + ", ".join(f'"{c}"' for c in challenges) + "]"]
        if self.eab:
            lines += [f'eab_kid = "{self.eab_kid}"', f'eab_hmac_key_file = "{self.eab_key_file}"']
        if dns01:
            lines.append(f"dns01 = {dns01}")
        if extra:
            lines.append(extra.strip())
        return "\n".join(lines) + "\n"

    def command(self):
        return [self.binary, "-config", str(self.config_path), "-dnsserver", self.dns_server,
                "-strict=false"]

    def env(self):
        env = {k: v for k, v in os.environ.items() if k not in _PEBBLE_ENV}
        env.update(PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0")
        if self.nonce_reject is not None:
            env["PEBBLE_WFE_NONCEREJECT"] = str(self.nonce_reject)
        return env

    def ready(self) -> bool:
        try:
            return self.http.get(self.directory_url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    # ---- the management API
    def _management(self, path: str) -> requests.Response:
        response = self.http.get(f"{self.management_url}{path}", timeout=10)
        if response.status_code != 200:
            raise E2EError(f"pebble management {path}: {response.status_code} {response.text}\n"
                           f"{self.output()}")
        return response

    def issuing_roots(self) -> str:
        """Pebble's issuing root (PEM), new at every start."""
        return self._management("/roots/0").text

    def issuing_intermediates(self) -> str:
        """Pebble's intermediate (PEM), new at every start."""
        return self._management("/intermediates/0").text

    def cert_status(self, serial) -> dict:
        """`cert-status-by-serial`: {"Status": "Valid" | "Revoked", ...}; `serial` an int or hex."""
        hex_serial = format(serial, "x") if isinstance(serial, int) else str(serial).lower()
        return self._management(f"/cert-status-by-serial/{hex_serial}").json()

    # ---- what its log says
    def log_lines(self) -> list:
        lines = []
        for path in (self.stdout_path, self.stderr_path):
            with contextlib.suppress(OSError):
                lines += path.read_text(errors="replace").splitlines()
        return lines

    def new_order_requests(self) -> int:
        """POSTs to new-order that reached Pebble (its log line `POST /order-plz -> calling
        handler()`), accepted or not (a badNonce is counted too)."""
        return sum(1 for line in self.log_lines() if line.endswith(NEW_ORDER_REQUEST_LINE))

    def orders_created(self) -> list:
        """The ids of the orders Pebble accepted (`Added order "<id>" to the db`), oldest first."""
        return [m.group(1) for line in self.log_lines() if (m := ORDER_ADDED.search(line))]

    def issued_serials(self) -> list:
        """The hex serials of the certificates it issued (`Issued certificate serial <hex> for
        order <id>`), oldest first."""
        return [m.group(1) for line in self.log_lines() if (m := ISSUED.search(line))]


class RefusedPort:
    """A loopback port bound by this process but not listening: every connection is refused
    (RST) and no other program can take the port while this object is open. `directory_url` is
    an ACME directory that is down. Use it as a context manager (or call close())."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.bind(("127.0.0.1", free_port()))
        except OSError:
            self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- ARI stand-in


def ari_cert_id(cert) -> str:
    """The RFC 9773 certificate identifier of `cert` (x509.Certificate, PEM or DER bytes/str):
    base64url(authority key identifier) "." base64url(serial number's DER content octets)."""
    if isinstance(cert, str):
        cert = cert.encode()
    if isinstance(cert, bytes):
        cert = (x509.load_pem_x509_certificate(cert) if cert.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(cert))
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = cert.serial_number
    return f"{b64u(aki)}.{b64u(serial.to_bytes((serial.bit_length() + 8) // 8, 'big'))}"


def rfc3339(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_CERT_ID = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class AriStandIn(ServedInThread):
    """A stand-in for ACME Renewal Information (RFC 9773), which Debian's Pebble 2.4.0 does not
    have (its directory has no `renewalInfo`): the smallest honest one, an HTTPS server (stdlib
    http.server + ssl, a thread of the test process) on 127.0.0.1 and a free port, its certificate
    issued by the same listener CA as Pebble's (so one `trust_roots_file` trusts both):

    - `GET /dir`: Pebble's directory as Pebble serves it now, plus `"renewalInfo":
      "https://127.0.0.1:<port>/renewal-info"`; every other URL still points at Pebble, so accounts,
      orders and nonces are Pebble's own;
    - `GET /renewal-info/<cert id>`: `{"suggestedWindow": {"start", "end"}}` (RFC 3339) and a
      `Retry-After: <retry_after>` header (seconds, 3600 unless set). The window of a certificate
      is the one `set_window` gave it, else the default: from 30 to 32 days after the request
      (not due). `move_window_into_past(cert_id)` makes it end an hour before the request (due at
      once); with no cert id, the default moves for every certificate. A malformed cert id is a
      400 `malformed` problem.

    It does not check that a cert id names a certificate Pebble issued (Pebble cannot be asked by
    AKI and serial); `requested_cert_ids()` records every well-formed one asked for, in order.
    Use it as a context manager (started on entry, stopped on exit).

    `reflect_replaces=True`: a CA that takes `replaces` as RFC 9773 section 5 asks ("If the Server
    accepts a new-order request with a "replaces" field, it MUST reflect that field in the
    response and in subsequent requests for the corresponding Order object"), which Pebble 2.4.0
    cannot: the stand-in is then also a reverse proxy in front of Pebble for every other request
    (the Host header kept as the stand-in's, so Pebble's links and its check of each JWS `url`
    name the stand-in), adds `replaces` to the new-order answer and to later fetches of that
    order, and records it (`replaces_seen()`). Without it (the default) the directory's other URLs
    are Pebble's own: a CA offering ARI that ignores `replaces`."""

    def __init__(self, pebble: Pebble, listener_ca: ListenerCA, root: Path,
                 reflect_replaces: bool = False):
        self.pebble = pebble
        self.port = free_port()
        self.reflect_replaces = reflect_replaces
        self._replaces = []         # `replaces` of each new-order request, in order
        self._order_replaces = {}   # order path -> the `replaces` it reflects
        self.retry_after = 3600
        self._windows = {}
        self._default_in_past = False
        self._asked = []
        self._requests = []
        self._lock = threading.Lock()
        cert_path, key_path = listener_ca.issue_server_cert(Path(root), "ari")
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert_path, key_path)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with outer._lock:
                    outer._requests.append(self.path)
                if self.path == "/dir":
                    outer._serve_directory(self)
                elif self.path.startswith("/renewal-info/"):
                    outer._serve_renewal_info(self, self.path[len("/renewal-info/"):])
                elif outer.reflect_replaces:
                    outer._proxy(self)
                else:
                    _send_json(self, 404, {"type": "urn:ietf:params:acme:error:malformed",
                                           "detail": f"no such resource: {self.path}"})

            def do_HEAD(self):
                if outer.reflect_replaces:
                    outer._proxy(self)
                else:
                    _send_json(self, 405, {"detail": "HEAD"})

            def do_POST(self):
                if outer.reflect_replaces:
                    outer._proxy(self)
                else:
                    _send_json(self, 405, {"detail": "POST"})

            def log_message(self, *args):  # recorded above
                pass

        class TlsServer(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                # The handshake in the request's own thread: a client that never sends a
                # ClientHello blocks only itself, not the accept loop.
                request.settimeout(10)
                try:
                    tls = outer._tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                try:
                    self.RequestHandlerClass(tls, client_address, self)
                finally:
                    with contextlib.suppress(OSError):
                        tls.close()

        # a short poll interval: shutdown() waits for one
        self.serve(TlsServer(("127.0.0.1", self.port), Handler), poll_interval=0.05)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def renewal_info_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/renewal-info"


    # ---- what the test sets and reads
    def set_window(self, cert_id: str, start: _dt.datetime, end: _dt.datetime):
        with self._lock:
            self._windows[cert_id] = (start, end)

    def move_window_into_past(self, cert_id: str = None):
        """The window of `cert_id` (or, with None, the default of every certificate without a
        window of its own) ends an hour before each request: renewal is due now."""
        with self._lock:
            if cert_id is None:
                self._default_in_past = True
            else:
                self._windows[cert_id] = "past"

    def set_retry_after(self, seconds: int):
        with self._lock:
            self.retry_after = seconds

    def requested_cert_ids(self) -> list:
        with self._lock:
            return list(self._asked)

    def replaces_seen(self) -> list:
        """With `reflect_replaces`: the `replaces` of each new-order request (None when it had
        none), in order."""
        with self._lock:
            return list(self._replaces)

    def requests(self) -> list:
        """The path of every GET so far."""
        with self._lock:
            return list(self._requests)

    def window_for(self, cert_id: str, now: _dt.datetime = None):
        """(start, end) that a request for `cert_id` at `now` is answered with."""
        now = now or _dt.datetime.now(_dt.timezone.utc)
        with self._lock:
            window = self._windows.get(cert_id, "past" if self._default_in_past else None)
        if window == "past":
            return now - _dt.timedelta(hours=2), now - _dt.timedelta(hours=1)
        if window is None:
            return now + _dt.timedelta(days=30), now + _dt.timedelta(days=32)
        return window

    # ---- the two resources
    def _serve_directory(self, handler):
        # As a proxy, Pebble is asked with the stand-in's Host: its links then name the stand-in.
        headers = {"Host": f"127.0.0.1:{self.port}"} if self.reflect_replaces else {}
        try:
            upstream = self.pebble.http.get(self.pebble.directory_url, timeout=5, headers=headers)
            directory = upstream.json()
        except (requests.RequestException, ValueError) as exc:
            _send_json(handler, 502, {"type": "urn:ietf:params:acme:error:serverInternal",
                                      "detail": f"Pebble's directory: {exc}"})
            return
        directory["renewalInfo"] = self.renewal_info_url
        _send_json(handler, 200, directory)

    def _serve_renewal_info(self, handler, cert_id: str):
        if not _CERT_ID.match(cert_id):
            _send_json(handler, 400, {"type": "urn:ietf:params:acme:error:malformed",
                                      "detail": f"not a certificate identifier: {cert_id!r}"})
            return
        with self._lock:
            self._asked.append(cert_id)
            retry_after = self.retry_after
        start, end = self.window_for(cert_id)
        _send_json(handler, 200, {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}},
                   {"Retry-After": str(retry_after)})


    def _proxy(self, handler):
        """Forwards one ACME request to Pebble (the stand-in's Host kept) and relays the answer;
        reflects `replaces` in the new-order answer and later fetches of that order."""
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        replaces = None
        if handler.command == "POST" and handler.path == "/order-plz" and body:
            try:
                payload = json.loads(b64u_decode(json.loads(body)["payload"]) or b"{}")
                replaces = payload.get("replaces")
            except (ValueError, KeyError, TypeError):
                replaces = None
            with self._lock:
                self._replaces.append(replaces)
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if handler.headers.get("Content-Type"):
            headers["Content-Type"] = handler.headers["Content-Type"]
        try:
            upstream = self.pebble.http.request(
                handler.command, f"https://127.0.0.1:{self.pebble.acme_port}{handler.path}",
                data=body, headers=headers, timeout=10, allow_redirects=False)
        except requests.RequestException as exc:
            _send_json(handler, 502, {"type": "urn:ietf:params:acme:error:serverInternal",
                                      "detail": f"Pebble: {exc}"})
            return
        data = upstream.content
        if upstream.status_code in (200, 201) and upstream.headers.get("Content-Type", "").startswith(
                "application/json"):
            location = upstream.headers.get("Location", "")
            with self._lock:
                if replaces is not None and upstream.status_code == 201 and location:
                    self._order_replaces[_path_of(location)] = replaces
                reflected = self._order_replaces.get(handler.path)
            if replaces is not None or reflected is not None:
                order = json.loads(data)
                order["replaces"] = replaces if replaces is not None else reflected
                data = json.dumps(order).encode()
        handler.send_response(upstream.status_code)
        for name in ("Content-Type", "Location", "Replay-Nonce", "Link", "Retry-After",
                     "Cache-Control"):
            if name in upstream.headers:
                handler.send_header(name, upstream.headers[name])
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)


def _path_of(url: str) -> str:
    """The path of an absolute URL (`https://host:port/path` -> `/path`)."""
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url


def _send_json(handler, status: int, body: dict, headers: dict = None):
    data = json.dumps(body).encode()
    handler.send_response(status)
    ctype = "application/problem+json" if status >= 400 else "application/json"
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


# --------------------------------------------------------------------------- a test client


class AcmeProblem(E2EError):
    """An ACME error response: `status`, `type` (`urn:ietf:params:acme:error:...`), `detail`."""

    def __init__(self, status: int, body: dict, url: str):
        self.status = status
        self.type = body.get("type", "")
        self.detail = body.get("detail", "")
        super().__init__(f"{url}: {status} {self.type}: {self.detail}")


class AcmeTestClient:
    """A minimal RFC 8555 client (ES256 account key, http-01 and dns-01, EAB), only for the
    harness's self-checks: it proves Pebble, BIND and the ARI stand-in work together without
    OpenSCM, and quickly (lego sleeps 5 s before its first look at an authorization). It
    retries a badNonce up to 5 times, as RFC 8555 section 6.5 asks. Not a reference client."""

    def __init__(self, directory_url: str, trust_roots_file, eab: tuple = None):
        self.http = _session(trust_roots_file)
        self.directory = self._ok(self.http.get(directory_url, timeout=10), directory_url).json()
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64u(numbers.x.to_bytes(32, "big")),
                    "y": b64u(numbers.y.to_bytes(32, "big"))}
        thumb = hashlib.sha256(json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode())
        self.thumbprint = b64u(thumb.digest())
        self.eab = eab
        self.account_url = None
        self._nonce = None
        self.bad_nonces = 0

    @staticmethod
    def _ok(response, url):
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            raise AcmeProblem(response.status_code, body, url)
        return response

    def _new_nonce(self) -> str:
        response = self.http.head(self.directory["newNonce"], timeout=10)
        return response.headers["Replay-Nonce"]

    def _jws(self, url: str, payload, use_jwk: bool = False) -> dict:
        protected = {"alg": "ES256", "nonce": self._nonce or self._new_nonce(), "url": url}
        self._nonce = None
        if use_jwk:
            protected["jwk"] = self.jwk
        else:
            protected["kid"] = self.account_url
        p64 = b64u(json.dumps(protected).encode())
        body64 = "" if payload is None else b64u(json.dumps(payload).encode())
        der = self.key.sign(f"{p64}.{body64}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return {"protected": p64, "payload": body64,
                "signature": b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}

    def post(self, url: str, payload=None, use_jwk: bool = False) -> requests.Response:
        """A signed POST (`payload=None`: POST-as-GET); retries a badNonce."""
        for _ in range(6):
            response = self.http.post(url, json=self._jws(url, payload, use_jwk), timeout=10,
                                      headers={"Content-Type": "application/jose+json"})
            self._nonce = response.headers.get("Replay-Nonce")
            if response.status_code == 400 and "badNonce" in response.text:
                self.bad_nonces += 1
                continue
            return self._ok(response, url)
        return self._ok(response, url)

    def register(self):
        payload = {"termsOfServiceAgreed": True, "contact": ["mailto:e2e@shop.test"]}
        if self.eab:
            kid, key = self.eab
            url = self.directory["newAccount"]
            protected = b64u(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
            body = b64u(json.dumps(self.jwk).encode())
            mac = hmac.new(b64u_decode(key), f"{protected}.{body}".encode(), hashlib.sha256)
            payload["externalAccountBinding"] = {"protected": protected, "payload": body,
                                                 "signature": b64u(mac.digest())}
        response = self.post(self.directory["newAccount"], payload, use_jwk=True)
        self.account_url = response.headers["Location"]
        return self

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.thumbprint}"

    def dns01_value(self, token: str) -> str:
        return b64u(hashlib.sha256(self.key_authorization(token).encode()).digest())

    def new_order(self, names: list):
        response = self.post(self.directory["newOrder"],
                             {"identifiers": [{"type": "dns", "value": n} for n in names]})
        return response.headers["Location"], response.json()

    def _poll(self, url: str, done, timeout: float, what: str) -> dict:
        seen = {}

        def current():
            seen["body"] = self.post(url).json()
            return done(seen["body"])

        wait_until(current, timeout, what, seen=lambda: seen.get("body"), interval=0.05)
        return seen["body"]

    def issue(self, names: list, solve, timeout: float = 20.0) -> str:
        """One order for `names`, each pending authorization answered by `solve(name,
        challenges) -> the challenge to answer` (after publishing its proof): returns the chain
        (PEM) the order's certificate URL serves."""
        order_url, order = self.new_order(names)
        for authz_url in order["authorizations"]:
            authz = self.post(authz_url).json()
            if authz["status"] == "valid":
                continue
            challenge = solve(authz["identifier"]["value"], authz["challenges"])
            self.post(challenge["url"], {})
            final = self._poll(authz_url, lambda a: a["status"] != "pending", timeout,
                               f"authorization of {authz['identifier']['value']} to leave pending")
            if final["status"] != "valid":
                raise E2EError(f"authorization {final['identifier']['value']} is {final['status']}: "
                               f"{json.dumps(final.get('challenges'))}")
        csr_pem, _ = make_csr(names)
        csr_der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
        self.post(order["finalize"], {"csr": b64u(csr_der)})
        order = self._poll(order_url, lambda o: o["status"] in ("valid", "invalid"), timeout,
                           "the order to be valid")
        if order["status"] != "valid":
            raise E2EError(f"order is {order['status']}: {order}")
        return self.post(order["certificate"]).text

    def issue_http01(self, names: list, responder, timeout: float = 20.0) -> str:
        """`issue` with http-01, `responder` an e2e_helpers.ValidationWebServer on Pebble's
        `http_port` (each token published, withdrawn afterwards)."""
        published = []

        def solve(name, challenges):
            ch = next(c for c in challenges if c["type"] == "http-01")
            path = f"/.well-known/acme-challenge/{ch['token']}"
            responder.publish(path, self.key_authorization(ch["token"]))
            published.append(path)
            return ch

        try:
            return self.issue(names, solve, timeout)
        finally:
            for path in published:
                responder.withdraw(path)

    def issue_dns01(self, names: list, named: Named, timeout: float = 20.0) -> str:
        """`issue` with dns-01, the TXT records added to `named` by RFC 2136 with OpenSCM's TSIG
        key, and deleted afterwards."""
        added = []

        def solve(name, challenges):
            ch = next(c for c in challenges if c["type"] == "dns-01")
            host = f"_acme-challenge.{name.removeprefix('*.')}"
            named.add_txt(host, self.dns01_value(ch["token"]))
            added.append(host)
            return ch

        try:
            return self.issue(names, solve, timeout)
        finally:
            for host in added:
                named.delete_txt(host)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def acme_listener_ca(tmp_path_factory) -> ListenerCA:
    """The CA of every Pebble's and ARI stand-in's HTTPS listener in this run; `pem_path` is the
    one `trust_roots_file` for all of them."""
    return ListenerCA(tmp_path_factory.mktemp("acme-listener-ca"))


@pytest.fixture(scope="session")
def named(tmp_path_factory):
    """BIND authoritative for shop.test. (every name A 127.0.0.1, TXT updates with TSIG key
    `openscm.`), one for the whole run: records a test adds outlive it, so use names of your own
    and delete what you add."""
    with started(Named(tmp_path_factory.mktemp("named"))) as instance:
        yield instance


@pytest.fixture
def make_pebble(tmp_path_factory, acme_listener_ca, named):
    """make(http_port=None, *, eab=False, nonce_reject=0) -> a started Pebble resolving through
    `named`, stopped at the end of the test (several at once are fine)."""
    made = []

    def make(http_port: int = None, *, eab: bool = False, nonce_reject=0, **kw) -> Pebble:
        pebble = Pebble(tmp_path_factory.mktemp("pebble"), listener_ca=acme_listener_ca,
                        dns_server=named.addr, http_port=http_port, eab=eab,
                        nonce_reject=nonce_reject, **kw)
        made.append(pebble)
        pebble.start()
        return pebble

    yield make
    for pebble in reversed(made):
        pebble.stop()


@pytest.fixture
def make_ari_standin(tmp_path_factory, acme_listener_ca):
    """make(pebble, reflect_replaces=False) -> a running AriStandIn in front of `pebble`, stopped
    at the end of the test."""
    with contextlib.ExitStack() as stack:
        def make(pebble: Pebble, reflect_replaces: bool = False) -> AriStandIn:
            return stack.enter_context(
                AriStandIn(pebble, acme_listener_ca, tmp_path_factory.mktemp("ari"),
                           reflect_replaces=reflect_replaces))

        yield make


__all__ = ["ZONE", "TSIG_KEY_NAME", "TSIG_ALGORITHM", "EAB_KEYS", "ListenerCA", "Named", "Pebble",
           "RefusedPort", "AriStandIn", "AcmeTestClient", "AcmeProblem", "ari_cert_id", "rfc3339",
           "acme_listener_ca", "named", "make_pebble", "make_ari_standin"]
