"""External programs the suites run beside OpenSCM: nginx, pebble-challtestsrv as a DNS
server, HAProxy (runtime API, crt-list), an SMTP server (aiosmtpd) and a webhook receiver (a
thread of the test process); Pebble and BIND as the lifecycle issues add them.

A `Component` is started once for as long as a fixture's scope says (a session-scoped
fixture starts it once for the whole suite run: seconds, not minutes, per suite), in its
own process group, with its output in files under its root. It is ready when its
`ready()` condition holds, polled against a deadline, never after a fixed sleep; when it
exits or misses the deadline, the error carries what it printed. A fixture starts one with
`started(...)`, which also stops it:

    @pytest.fixture(scope="session")
    def pebble(tmp_path_factory):
        with started(Pebble(tmp_path_factory.mktemp("pebble"))) as component:
            yield component
"""

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import requests
from cryptography import x509

from e2e_helpers import (E2EError, ServedInThread, free_port, port_open, require_tool, self_signed_pem,
                         served_cert_der, tail)


class Component:
    """One external program. Subclasses give `name`, `command()` and `ready()`; they may
    add `check()` (a configuration test run before the start), `stop_signal` and
    `log_files()` (the program's own logs, shown when something fails)."""

    name = "component"
    stop_signal = signal.SIGTERM

    def __init__(self, root: Path):
        self.root = Path(root)
        self.logs_dir = self.root / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.logs_dir / f"{self.name}.stdout.log"
        self.stderr_path = self.logs_dir / f"{self.name}.stderr.log"
        self.proc = None

    # ---- what a subclass says
    def command(self) -> list:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def check(self):
        """Runs before each start (e.g. `nginx -t`); raises with the program's words."""

    def log_files(self) -> list:
        return []

    def env(self) -> dict:
        return dict(os.environ)

    # ---- the lifecycle
    def start(self, timeout: float = 15.0):
        self.check()
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=self.env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                raise E2EError(f"{self.name} exited with {rc} while starting\n{self.output()}")
            if self.ready():
                return self
            if time.monotonic() >= deadline:
                self.stop()
                raise E2EError(f"{self.name} was not ready within {timeout:.1f} s\n{self.output()}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, self.stop_signal)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """What the program printed and logged, for failure messages."""
        parts = []
        for path in [self.stdout_path, self.stderr_path, *self.log_files()]:
            parts.append(f"--- {self.name} {Path(path).name}:\n{tail(path)}")
        return "\n".join(parts)


class TcpComponent(Component):
    """A component that is ready when it accepts TCP connections on `port` (127.0.0.1)."""

    port = 0

    def ready(self) -> bool:
        return port_open(self.port)


@contextlib.contextmanager
def started(component: Component, timeout: float = 15.0):
    """Starts `component`, yields it, and stops it however the block ends."""
    component.start(timeout=timeout)
    try:
        yield component
    finally:
        component.stop()


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {D}/logs/nginx.pid;
error_log {D}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {D}/logs/access.log;
  client_body_temp_path {D}/temp/client_body; proxy_temp_path {D}/temp/proxy; fastcgi_temp_path {D}/temp/fastcgi;
  uwsgi_temp_path {D}/temp/uwsgi; scgi_temp_path {D}/temp/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name _;
    ssl_certificate     {cert};
    ssl_certificate_key {key};
    location / {{ return 200 "ok\\n"; }}
  }}
}}
"""


class Nginx(TcpComponent):
    """A throwaway nginx (test-infra.md section 3, foreground variant) on a free loopback port,
    serving an initial self-signed certificate from the files a push target writes."""

    name = "nginx"
    stop_signal = signal.SIGQUIT  # graceful: the master finishes its workers

    def __init__(self, root: Path):
        super().__init__(root)
        self.binary = require_tool("nginx")
        for sub in ("conf", "temp", "certs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.cert_path = self.root / "certs" / "live.crt"
        self.key_path = self.root / "certs" / "live.key"
        self.conf_path = self.root / "conf" / "nginx.conf"
        self.error_log = self.logs_dir / "error.log"
        cert_pem, key_pem = self_signed_pem("openscm-e2e initial", ["example.test"])
        self.initial_cert_pem = cert_pem
        self.cert_path.write_bytes(cert_pem)
        self.key_path.write_bytes(key_pem)
        os.chmod(self.key_path, 0o600)
        self.conf_path.write_text(NGINX_CONF.format(D=self.root, port=self.port,
                                                    cert=self.cert_path, key=self.key_path))

    def base_command(self):
        return [self.binary, "-p", str(self.root), "-e", str(self.error_log), "-c", str(self.conf_path)]

    def command(self):
        return self.base_command()

    def test_command(self):
        return self.base_command() + ["-t"]

    def reload_command(self):
        return self.base_command() + ["-s", "reload"]

    def check(self):
        result = subprocess.run(self.test_command(), capture_output=True, text=True)
        if result.returncode != 0:
            raise E2EError(f"nginx -t failed: {result.stderr}")

    def log_files(self):
        return [self.error_log]

    def served_cert(self, sni: str, cafile: str = None) -> bytes:
        return served_cert_der(self.port, sni, cafile)

    def wait_for_cert(self, sni: str, der: bytes, timeout: float = 10.0, cafile: str = None,
                      stable: int = 5) -> bytes:
        """Poll new TLS connections until nginx serves `der` on `stable` handshakes in a row.

        A reload is not instant and old workers may still take a connection or two after
        the new certificate first shows up (test-infra.md section 3). With `cafile` every
        handshake also verifies the chain and the host name."""
        deadline = time.monotonic() + timeout
        got, streak, last_error = None, 0, None
        while time.monotonic() < deadline:
            try:
                got = self.served_cert(sni, cafile)
            except ssl.SSLError as exc:
                got, last_error = None, exc
            streak = streak + 1 if got == der else 0
            if streak >= stable:
                return got
            time.sleep(0.02)
        got_desc = x509.load_der_x509_certificate(got).subject.rfc4514_string() if got else None
        raise AssertionError(f"nginx never served the expected certificate steadily (last: {got_desc}, "
                             f"last TLS error: {last_error})\n{tail(self.error_log)}")


def free_dns_port() -> int:
    """A port from `free_port()` that is free for UDP too (a DNS server takes both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise E2EError("no port free for both TCP and UDP in 50 tries")


class ChallTestSrv(Component):
    """pebble-challtestsrv (Debian `pebble`; test-infra.md section 1, Mode B) as a DNS server on
    127.0.0.1: every A query is answered with 127.0.0.1 and AAAA with nothing, so any name
    reaches a server the test runs on loopback; TXT records are set and cleared through its
    management API (`set_txt`, `clear_txt`). Its HTTP-01, HTTPS and TLS-ALPN responders are off.
    Ready when its DNS port accepts TCP and its management API answers.

    Records live until cleared, across tests: clear what you set, or use names of your own.
    OpenSCM is pointed at it with `[validation] nameservers = ["<dns_addr>"]`."""

    name = "challtestsrv"

    def __init__(self, root: Path, dns_port: int = None, management_port: int = None):
        super().__init__(root)
        self.binary = require_tool("pebble-challtestsrv")
        self.dns_port = dns_port or free_dns_port()
        self.management_port = management_port or free_port()
        # Its own session: no proxy from the environment between us and loopback.
        self.http = requests.Session()
        self.http.trust_env = False

    @property
    def dns_addr(self) -> str:
        """`127.0.0.1:<port>` of its DNS server (UDP and TCP)."""
        return f"127.0.0.1:{self.dns_port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def command(self):
        return [self.binary, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                "-dns01", self.dns_addr, "-http01", "", "-https01", "", "-tlsalpn01", "",
                "-management", f"127.0.0.1:{self.management_port}"]

    def ready(self) -> bool:
        if not port_open(self.dns_port):
            return False
        try:
            return self.http.post(f"{self.management_url}/clear-txt",
                                  json={"host": "ready.invalid."}, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _post(self, path: str, body: dict):
        response = self.http.post(f"{self.management_url}{path}", json=body, timeout=5)
        if response.status_code != 200:
            raise E2EError(f"challtestsrv {path} {body}: {response.status_code} {response.text}\n"
                           f"{self.output()}")

    def set_txt(self, host: str, value: str):
        """Adds a TXT record `value` at `host` (a second value adds a second record)."""
        self._post("/set-txt", {"host": _absolute(host), "value": value})

    def clear_txt(self, host: str):
        """Removes every TXT record at `host`."""
        self._post("/clear-txt", {"host": _absolute(host)})


def _absolute(host: str) -> str:
    return host.rstrip(".") + "."


HAPROXY_CONF = """\
global
  stats socket {socket} mode 600 level admin
  log stderr format short local0 info
defaults
  mode http
  log global
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:{port} ssl crt-list {crt_list}
  http-request return status 200 content-type text/plain string "ok"
"""


class HAProxy(TcpComponent):
    """A throwaway HAProxy (Debian `haproxy`, 2.6; test-infra.md section 4) in the foreground on a
    free loopback port: TLS from a crt-list that names one certificate, `cert_path` (first a
    self-signed one for example.test), and the runtime API on the UNIX socket `socket` (`level
    admin`), which the `haproxy` push target speaks. Ready when the socket exists and the port
    accepts connections. `pid` is the process that serves (with `-db` there is no master)."""

    name = "haproxy"

    def __init__(self, root: Path):
        super().__init__(root)
        self.binary = require_tool("haproxy")
        (self.root / "certs").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.socket = self.root / "admin.sock"
        self.cert_path = self.root / "certs" / "site.pem"
        self.crt_list = self.root / "certs" / "list.crtlist"
        self.conf_path = self.root / "haproxy.cfg"
        cert_pem, key_pem = self_signed_pem("openscm-e2e haproxy initial", ["example.test"])
        self.initial_cert_pem = cert_pem
        self.cert_path.write_bytes(cert_pem + key_pem)
        os.chmod(self.cert_path, 0o600)
        self.crt_list.write_text(f"{self.cert_path}\n")
        self.conf_path.write_text(HAPROXY_CONF.format(socket=self.socket, port=self.port,
                                                      crt_list=self.crt_list))

    def command(self):
        return [self.binary, "-f", str(self.conf_path), "-db"]

    def check(self):
        result = subprocess.run([self.binary, "-c", "-f", str(self.conf_path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise E2EError(f"haproxy -c failed: {result.stdout} {result.stderr}")

    def ready(self) -> bool:
        return self.socket.exists() and port_open(self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def runtime(self, command: str, timeout: float = 5.0) -> str:
        """One runtime API command (e.g. `show info`); HAProxy's answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def served_cert(self, sni: str = "example.test") -> bytes:
        return served_cert_der(self.port, sni)


class SmtpReceiver(TcpComponent):
    """A real SMTP server, aiosmtpd (PyPI `aiosmtpd`, in the suite's venv; test-infra.md section
    7), on a free loopback port, keeping every message it accepts as one file in a maildir
    (`messages()` parses them). Plain SMTP, no authentication: a notifier with `tls = "none"`."""

    name = "aiosmtpd"

    def __init__(self, root: Path):
        super().__init__(root)
        import sys
        self.python = sys.executable
        self.port = free_port()
        self.maildir = self.root / "maildir"

    def command(self):
        # -n: do not switch to user nobody (we are root).
        return [self.python, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
                "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def messages(self) -> list:
        """Every message received so far (email.message.Message), oldest first."""
        import email
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime, p.name))
        return [email.message_from_bytes(p.read_bytes()) for p in files]


class WebhookReceiver(ServedInThread):
    """An HTTP server on 127.0.0.1 and a free port, in a thread of the test process: the peer of
    OpenSCM's webhooks (the `webhook` push target and the `webhook` notifier). It answers every
    POST with `status` (200 unless changed) and records each one: path, headers (lower-case
    names), the exact body bytes. Use it as a context manager (started on entry, stopped on
    exit)."""

    def __init__(self):
        import http.server
        import threading
        self.port = free_port()
        self.status = 200
        self._received = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer._lock:
                    outer._received.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    })
                    status = outer.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # recorded above
                pass

        self.serve(http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler))

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str = None) -> list:
        with self._lock:
            return [r for r in self._received if path is None or r["path"] == path]
