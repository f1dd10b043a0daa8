"""Helpers for the OpenSCM end-to-end suite: the server process, request signing,
the nginx harness, PostgreSQL databases and certificate checks.

Everything here is plain Python so that test modules can import it directly
(`from e2e_helpers import ...`); the pytest fixtures live in conftest.py.
"""

import datetime as _dt
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent

HEX32 = re.compile(r"^[0-9a-f]{32}$")
CERT_ID = re.compile(r"^scs[0-9]{13}$")
ORDER_ID = re.compile(r"^CS[0-9A-Z]{15}$")
SHOW_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.0$")
APIGW_AUTH_CODE = re.compile(r"^APIGW\.03\d\d$")

# The User-Agent the SDK sends starts with this; raw v2/v3 calls use it too.
USER_AGENT = "huaweicloud-usdk-python/3.0; openscm-e2e"


class E2EError(AssertionError):
    """A harness-level failure (a component is missing or misbehaves)."""


# --------------------------------------------------------------------------- misc


def _port_range():
    """The ports this process hands out: OPENSCM_TEST_PORTS="LO-HI" (scripts/test-all gives each
    suite running at once its own range, below the kernel's ephemeral range), split evenly between
    pytest-xdist workers; None when unset (then the kernel picks)."""
    spec = os.environ.get("OPENSCM_TEST_PORTS")
    if not spec:
        return None
    lo, hi = (int(x) for x in spec.split("-"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker.startswith("gw") else 0
    share = (hi - lo + 1) // max(count, 1)
    return lo + index * share, lo + (index + 1) * share - 1


_PORTS = {"next": None}


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now and that no other process of the test run will be
    handed (its own range, never reused in this process), so that suites running side by side do
    not race for the same port between this check and the server's bind."""
    bounds = _port_range()
    if bounds is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    lo, hi = bounds
    port = _PORTS["next"] or lo
    while port <= hi:
        candidate, port = port, port + 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        _PORTS["next"] = port
        return candidate
    raise E2EError(f"no free port left in {lo}-{hi} (OPENSCM_TEST_PORTS)")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str, seen=None, interval: float = 0.02):
    """Polls `condition()` until it returns something truthy (returned) or `timeout` seconds pass;
    then fails saying what was awaited and, from `seen()` when given, what there was instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = ""
            if seen is not None:
                try:
                    detail = f"; saw: {seen()}"
                except Exception as exc:  # what was seen cannot be read: say so
                    detail = f"; reading what was there failed: {exc!r}"
            raise E2EError(f"timed out after {timeout:.1f} s waiting for {what}{detail}")
        time.sleep(interval)


def faketime_env(offset: str) -> dict:
    """The environment that runs a process `offset` ahead of the real clock (libfaketime, Debian
    `faketime`; test-infra.md section 7c), e.g. `faketime_env("+300d")`.

    The library is preloaded into the process itself rather than started through the `faketime`
    command: that command forks and waits, and does not pass signals on, so a SIGTERM or SIGKILL
    sent to it would leave the server running. `$LIB` is expanded by the dynamic loader, as in the
    `faketime` command's own LD_PRELOAD."""
    require_tool("faketime")
    libs = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not libs:
        raise E2EError("libfaketime.so.1 is not installed (Debian package libfaketime, a dependency "
                       "of faketime; tests/e2e/run.sh installs it)")
    return {"LD_PRELOAD": "/usr/$LIB/faketime/libfaketime.so.1", "FAKETIME": offset}


def require_tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        raise E2EError(
            f"required tool {name!r} is not installed (tests/e2e/run.sh installs it with apt-get)"
        )
    return path


def tail(path: Path, limit: int = 6000) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    text = data[-limit:].decode("utf-8", "replace")
    return ("...\n" if len(data) > limit else "") + text


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- signing


def sign_sdk_request(method, host, path, *, ak, sk, query=None, headers=None, body=None,
                     project_id=None, domain_id=None, schema="http", signer=None):
    """Sign a request exactly as the official Python SDK does.

    Uses huaweicloudsdkcore's own code path: an `SdkRequest` signed by
    `BasicCredentials(ak, sk, project_id).sign_request` (adds X-Project-Id; what a v2
    client would use) when `project_id` is given, else by
    `GlobalCredentials(ak, sk, domain_id).sign_request` (adds X-Domain-Id when the
    domain id is set; what ScmClient uses). Returns the signed SdkRequest: its
    `header_params` are the headers to send, `uri` the path + canonical query, and
    `body` the exact bytes to send (or None).

    `signer`: a huaweicloudsdkcore `Signer` class to sign with instead of the credentials'
    own (a subclass that selects other signed headers, as the Go SDK does).
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    request = SdkRequest(
        method=method.upper(),
        schema=schema,
        host=host,
        resource_path=path,
        query_params=list(query or []),
        header_params=dict(headers or {}),
        body=body,
    )
    if project_id is not None:
        credentials = BasicCredentials(ak, sk, project_id)
    else:
        credentials = GlobalCredentials(ak, sk, domain_id)
    if signer is not None:
        # The credentials' own path (it adds X-Domain-Id / X-Project-Id), with `signer` as
        # the class for the request's algorithm.
        credentials._SIGNER_CASE = {**credentials._SIGNER_CASE, request.signing_algorithm: signer}
    return credentials.sign_request(request)


def sdk_date(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class Resp:
    """An HTTP response: unpacks as (status, headers, json); `.text` is the raw body."""

    def __init__(self, response: requests.Response):
        self.status = response.status_code
        self.headers = response.headers
        self.text = response.text
        try:
            self.json = response.json() if response.content else None
        except ValueError:
            self.json = None

    def __iter__(self):
        return iter((self.status, self.headers, self.json))

    def __repr__(self):
        return f"<Resp {self.status} {self.text[:500]!r}>"


def assert_request_id(headers) -> str:
    rid = headers.get("X-Request-Id")
    assert rid is not None, f"response has no X-Request-Id header: {dict(headers)}"
    assert HEX32.match(rid), f"X-Request-Id {rid!r} is not 32 lower-case hex"
    return rid


def assert_error(resp: Resp, status: int, code, field: str = None):
    """Assert an error response: status, error_code (str or regex), and optionally that
    error_msg names `field`."""
    assert resp.status == status, f"expected HTTP {status}, got {resp!r}"
    body = resp.json
    assert isinstance(body, dict), f"error body is not a JSON object: {resp.text!r}"
    assert set(body) >= {"error_code", "error_msg"}, f"error body lacks keys: {body}"
    if isinstance(code, re.Pattern):
        assert code.match(body["error_code"]), f"error_code {body['error_code']!r} !~ {code.pattern}"
    else:
        assert body["error_code"] == code, f"expected {code}, got {body}"
    if field is not None:
        assert field in (body["error_msg"] or ""), (
            f"error_msg does not name the field {field!r}: {body['error_msg']!r}"
        )
    assert_request_id(resp.headers)
    return body


# --------------------------------------------------------------------------- server


class Server:
    """One `openscm server` process with its data dir, logs and (optionally) database."""

    def __init__(self, binary: str, workdir: Path, database_url: str = None,
                 config_text: str = None, port: int = None):
        self.binary = str(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.log_dir = self.workdir / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.database_url = database_url
        self.config_path = None
        self.port = port or free_port()
        self.proc = None
        self.starts = 0
        self._sdk_clients = {}
        self.session = requests.Session()
        self.env = {}  # extra environment for the server process
        if config_text is not None:
            self.write_config(config_text)

    # -- process control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"stdout.{self.starts}.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"stderr.{self.starts}.log"

    def write_config(self, text: str):
        self.config_path = self.workdir / "config.toml"
        self.config_path.write_text(text)

    def command(self):
        cmd = [self.binary, "server", "--listen", self.host, "--data-dir", str(self.data_dir)]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        return cmd

    def spawn(self):
        """Start the process without waiting for readiness."""
        assert self.proc is None, "server already running"
        self.starts += 1
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env={**os.environ, "NO_COLOR": "1", **self.env},
            )
        finally:
            out.close()
            err.close()
        return self.proc

    def start(self, timeout: float = 20.0):
        self.spawn()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                raise E2EError(
                    f"openscm server exited with code {rc} before becoming ready\n{self.logs()}"
                )
            try:
                r = requests.get(self.url + "/health", timeout=1)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.05)
        self._kill()
        raise E2EError(
            f"openscm server not ready after {timeout}s (last: {last})\n{self.logs()}"
        )

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait, and require exit code 0."""
        if self.proc is None:
            return 0
        proc = self.proc
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise E2EError(f"openscm server did not exit within {timeout}s of SIGTERM\n{self.logs()}")
        self.proc = None
        self.session.close()
        self.session = requests.Session()
        if rc != 0:
            raise E2EError(f"openscm server exited with code {rc} after SIGTERM\n{self.logs()}")
        return rc

    def restart(self, config_text: str = None):
        self.stop()
        if config_text is not None:
            self.write_config(config_text)
        self._sdk_clients.clear()
        return self.start()

    def _kill(self):
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None

    def close(self):
        """Teardown: stop gracefully (asserting rc 0) or kill."""
        try:
            self.stop()
        finally:
            self._kill()

    def logs(self) -> str:
        return (
            f"--- openscm command: {' '.join(self.command())}\n"
            f"--- stdout ({self.stdout_path}):\n{tail(self.stdout_path)}\n"
            f"--- stderr ({self.stderr_path}):\n{tail(self.stderr_path)}"
        )

    # -- bootstrap data

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials.json"

    @property
    def ca_root_path(self) -> Path:
        """The roots the bootstrap account's certificates chain to."""
        return self.data_dir / "ca-root.pem"

    @property
    def https_root_path(self) -> Path:
        """The root of the server's own HTTPS certificate (`--tls builtin`): its CA issues
        nothing else."""
        return self.data_dir / "https-root.pem"

    @property
    def credentials(self) -> dict:
        return json.loads(self.credentials_path.read_text())

    # -- admin CLI

    def admin(self, *args, check: bool = True, parse: bool = True):
        """`openscm admin ARGS`; with `parse`, asked for JSON (`-o json`) and parsed."""
        cmd = [self.binary, "admin", "--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += [str(a) for a in args]
        if parse:
            cmd += ["-o", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, NO_COLOR="1"))
        if check and proc.returncode != 0:
            raise E2EError(
                f"{' '.join(cmd)} exited with {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        if not parse:
            return proc
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise E2EError(f"{' '.join(cmd)} did not print JSON: {proc.stdout!r} (stderr {proc.stderr!r})")

    def create_account(self, name: str) -> dict:
        account = self.admin("account", "create", "--name", name)
        assert HEX32.match(account["domain_id"]), account
        assert HEX32.match(account["project_id"]), account
        assert account["name"] == name, account
        return account

    def create_credential(self, domain_id: str) -> dict:
        cred = self.admin("credential", "create", "--account", domain_id)
        assert cred["domain_id"] == domain_id, cred
        assert cred["access_key"] and cred["secret_key"], cred
        return cred

    # -- clients

    def sdk_client(self, creds: dict = None):
        """An official ScmClient (v3) for `creds` (default: the bootstrap credentials)."""
        from huaweicloudsdkscm.v3 import ScmClient

        creds = creds or self.credentials
        key = (creds["access_key"], creds["secret_key"], creds["domain_id"])
        if key not in self._sdk_clients:
            config = HttpConfig.get_default_config()
            config.timeout = (5, 60)
            self._sdk_clients[key] = (
                ScmClient.new_builder()
                .with_http_config(config)
                .with_credentials(GlobalCredentials(*key))
                .with_endpoints([self.url])
                .build()
            )
        return self._sdk_clients[key]

    def signed(self, method, path, body=None, *, creds=None, scope="domain", project_id=None,
               query=None, headers=None, content_type="application/json", date=None,
               mutate=None, timeout=60) -> Resp:
        """Send a request signed with the SDK's signer.

        scope="domain": GlobalCredentials(ak, sk, domain_id) as ScmClient does (X-Domain-Id).
        scope="project": BasicCredentials(ak, sk, project_id) as a v2 client does (X-Project-Id).
        body: dict/list -> JSON as the SDK serialises it; str/bytes -> sent verbatim; None -> no body.
        date: a datetime to put in X-Sdk-Date before signing (the signer then signs with it).
        mutate: callable(headers) -> None, applied to the signed headers before sending.
        """
        creds = creds or self.credentials
        hdrs = {}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs["User-Agent"] = USER_AGENT
        if headers:
            hdrs.update(headers)
        if date is not None:
            hdrs["X-Sdk-Date"] = sdk_date(date)
        if body is None:
            raw = None
        elif isinstance(body, (bytes, bytearray)):
            raw = bytes(body)
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = json.dumps(body).encode("utf-8")  # ", " / ": " separators, like simplejson
        if scope == "project":
            req = sign_sdk_request(method, self.host, path, ak=creds["access_key"], sk=creds["secret_key"],
                                   query=query, headers=hdrs, body=raw,
                                   project_id=project_id or creds["project_id"])
        else:
            req = sign_sdk_request(method, self.host, path, ak=creds["access_key"], sk=creds["secret_key"],
                                   query=query, headers=hdrs, body=raw, domain_id=creds["domain_id"])
        send_headers = dict(req.header_params)
        if mutate is not None:
            mutate(send_headers)
        return self.raw(method, req.uri, headers=send_headers, data=req.body, timeout=timeout)

    def raw(self, method, uri, headers=None, data=None, timeout=60) -> Resp:
        """Send bytes as given (no auth added). requests does not touch bytes bodies."""
        response = self.session.request(method.upper(), self.url + uri, headers=headers or {},
                                        data=data, timeout=timeout, allow_redirects=False)
        resp = Resp(response)
        assert_request_id(resp.headers)
        return resp

    def v2(self, method, path, body=None, creds=None, project_id=None, *, sign_project_id=None,
           **kw) -> Resp:
        """A v2 call: `path` is relative to /v2/{project_id} (e.g. "/scm/cert/purchase").
        Signed with BasicCredentials(ak, sk, project) so X-Project-Id is sent, like a real
        v2 client. project_id defaults to the credential's own project."""
        creds = creds or self.credentials
        project_id = project_id or creds["project_id"]
        return self.signed(method, f"/v2/{project_id}{path}", body, creds=creds, scope="project",
                           project_id=sign_project_id or project_id, **kw)

    def v3(self, method, path, body=None, creds=None, **kw) -> Resp:
        """A raw v3 call signed like ScmClient (GlobalCredentials with domain id)."""
        return self.signed(method, path, body, creds=creds, scope="domain", **kw)


def push_target_toml(name, *, account, service, region, cert_path, key_path,
                     reload_command, test_command=None) -> str:
    lines = [
        "[[push_targets]]",
        f"name = {json.dumps(name)}",
        'kind = "nginx"',
        f"account = {json.dumps(account)}",
        f"service = {json.dumps(service)}",
        f"region = {json.dumps(region)}",
        f"cert_path = {json.dumps(str(cert_path))}",
        f"key_path = {json.dumps(str(key_path))}",
    ]
    if test_command is not None:
        lines.append(f"test_command = {json.dumps([str(c) for c in test_command])}")
    lines.append(f"reload_command = {json.dumps([str(c) for c in reload_command])}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- nginx


def served_cert_der(port: int, sni: str, cafile: str = None) -> bytes:
    """The leaf certificate (DER) a TLS server on 127.0.0.1:port presents for `sni`.
    With `cafile`, the chain and host name are verified too."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile=cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            return tls.getpeercert(binary_form=True)


# --------------------------------------------------------------------------- web server


class ServedInThread:
    """An HTTP server of the test process, served from a thread of its own while the object is
    used as a context manager. A subclass builds its server and hands it to `serve`."""

    def serve(self, httpd, poll_interval: float = 0.5):
        """`poll_interval`: how often serve_forever looks for a shutdown (which waits for it)."""
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(poll_interval,),
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class ValidationWebServer(ServedInThread):
    """A plain HTTP server on 127.0.0.1 and a free port, in a thread of the test process: the web
    server a FILE domain validation fetches from. It serves what `publish` put at a path and 404
    otherwise, and records every request (Host header, path, status). Use it as a context
    manager (started on entry, stopped on exit)."""

    def __init__(self):
        self.port = free_port()
        self._files = {}
        self._requests = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer._lock:
                    body = outer._files.get(self.path)
                    status = 404 if body is None else 200
                    outer._requests.append((self.headers.get("Host"), self.path, status))
                data = (body if body is not None else "not found\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # the requests are recorded above
                pass

        self.serve(http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler))

    def publish(self, path: str, content: str):
        with self._lock:
            self._files[path] = content

    def withdraw(self, path: str):
        with self._lock:
            self._files.pop(path, None)

    def requests(self, path: str = None) -> list:
        """(Host header, path, status) of every request so far, or of those for `path`."""
        with self._lock:
            return [r for r in self._requests if path is None or r[1] == path]


# --------------------------------------------------------------------------- PostgreSQL


class PgBase:
    """A base URL (postgres://user@host:port/db) and the CLI tools to make databases next to it."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("postgres", "postgresql"):
            raise E2EError(f"OPENSCM_TEST_PG_URL must be a postgres:// URL, got {url!r}")
        self.url = url
        self.scheme = parsed.scheme
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 5432
        self.user = urllib.parse.unquote(parsed.username or "postgres")
        self.base_db = parsed.path.lstrip("/") or "postgres"
        self.created = []
        for tool in ("createdb", "dropdb", "psql", "pg_dump"):
            require_tool(tool)

    def _conn_args(self):
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def url_for(self, db: str) -> str:
        return f"{self.scheme}://{urllib.parse.quote(self.user)}@{self.host}:{self.port}/{db}"

    def create(self, suffix: str = None) -> str:
        """createdb a fresh database named after the base one; returns its URL."""
        name = f"{self.base_db}_{suffix or secrets.token_hex(4)}"[:63]
        proc = subprocess.run(["createdb", *self._conn_args(), name], capture_output=True, text=True)
        if proc.returncode != 0:
            raise E2EError(f"createdb {name} failed: {proc.stderr}")
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url_or_name: str):
        name = url_or_name.rsplit("/", 1)[-1]
        proc = subprocess.run(["dropdb", *self._conn_args(), "--force", "--if-exists", name],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise E2EError(f"dropdb {name} failed: {proc.stderr}")
        if name in self.created:
            self.created.remove(name)

    def exists(self, name: str) -> bool:
        proc = self.psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        return proc.strip() == "1"

    def psql(self, db: str, sql: str) -> str:
        proc = subprocess.run(["psql", *self._conn_args(), "-d", db, "-tAc", sql],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise E2EError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def dump(self, url_or_name: str) -> bytes:
        name = url_or_name.rsplit("/", 1)[-1]
        proc = subprocess.run(["pg_dump", *self._conn_args(), "--no-owner", name], capture_output=True)
        if proc.returncode != 0:
            raise E2EError(f"pg_dump {name} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout


# --------------------------------------------------------------------------- X.509


def self_signed_pem(cn: str, dns_names, key=None):
    """A 1-day self-signed EC P-256 certificate and its PKCS#8 key, both PEM bytes."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = _dt.datetime.now(_dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )


def make_csr(names, key=None, rsa_bits: int = None):
    """A CSR (PEM str) with CN=names[0] and all names as DNS SANs; returns (csr_pem, key)."""
    if key is None:
        key = rsa.generate_private_key(65537, rsa_bits) if rsa_bits else ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def load_certs(pem) -> list:
    if isinstance(pem, str):
        pem = pem.encode()
    return x509.load_pem_x509_certificates(pem)


def spki(obj) -> bytes:
    """SubjectPublicKeyInfo DER of a certificate, CSR, private or public key."""
    if hasattr(obj, "public_key"):
        obj = obj.public_key()
    return obj.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def dns_sans(cert) -> set:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(ext.value.get_values_for_type(x509.DNSName))


def subject_attr(cert, oid):
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


def show_time(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.0")


def sha1_hex(cert) -> str:
    return cert.fingerprint(hashes.SHA1()).hex()


def openssl_verify(workdir: Path, ca_root: Path, leaf_pem: str, chain_pem: str,
                   attime: _dt.datetime = None):
    """`openssl verify -CAfile ca-root.pem -untrusted chain.pem leaf.pem` must say OK; with
    `attime`, the validity periods are checked at that time instead of now (`-attime`)."""
    openssl = require_tool("openssl")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    leaf = workdir / "leaf.pem"
    chain = workdir / "chain.pem"
    leaf.write_text(leaf_pem)
    chain.write_text(chain_pem)
    when = [] if attime is None else ["-attime", str(int(attime.timestamp()))]
    proc = subprocess.run(
        [openssl, "verify", "-purpose", "sslserver", *when, "-CAfile", str(ca_root),
         "-untrusted", str(chain), str(leaf)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), (
        f"openssl verify failed (rc {proc.returncode}): {proc.stdout} {proc.stderr}"
    )


def console_session(server, creds: dict = None) -> requests.Session:
    """A `requests` session signed in to `server`'s web console with `creds` (default: the
    bootstrap credentials), sending the `Origin` a browser would (the console refuses forms from
    other sites)."""
    creds = creds or server.credentials
    s = requests.Session()
    s.trust_env = False
    s.headers["Origin"] = server.url
    r = s.post(server.url + "/console/sign-in", allow_redirects=False,
               data={"access_key": creds["access_key"], "secret_key": creds["secret_key"]})
    assert r.status_code == 303 and r.headers["Location"] == "/console/certificates", r.text
    # requests keeps Secure cookies off plain http; give the value back by hand.
    value = re.match(r"openscm_console=([^;]+);", r.headers["Set-Cookie"]).group(1)
    s.headers["Cookie"] = f"openscm_console={value}"
    return s
