"""Fixtures for the OpenSCM end-to-end and conformance suites.

Run through tests/e2e/run.sh, which provides the venv, nginx/openssl/psql and a
throwaway PostgreSQL database (OPENSCM_TEST_PG_URL). Missing components make tests
fail, never skip.
"""

import os
import tempfile
import threading

# The SDK writes ~/.huaweicloud/application_id when it is imported: keep it out of the
# real home even when pytest is run directly (run.sh also points HOME at a temp dir).
if not os.environ.get("OPENSCM_E2E_HOME"):
    os.environ["OPENSCM_E2E_HOME"] = tempfile.mkdtemp(prefix="openscm-e2e-home-")
os.environ["HOME"] = os.environ["OPENSCM_E2E_HOME"]

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from components import ChallTestSrv, Nginx, started  # noqa: E402
# ACME issuance: BIND, Pebble, the ARI stand-in (acme_support.py's fixtures, for both suites)
from acme_support import acme_listener_ca, make_ari_standin, make_pebble, named  # noqa: E402,F401
from e2e_helpers import (  # noqa: E402
    REPO_ROOT,
    PgBase,
    Server,
    push_target_toml,
    require_tool,
)

_LIVE_SERVERS = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Attach the logs of every running openscm server to a failing test's report."""
    if call.excinfo is None or not _LIVE_SERVERS:
        return
    for server in list(_LIVE_SERVERS):
        item.add_report_section(call.when, f"openscm {server.workdir.name}", server.logs())


# --------------------------------------------------------------------------- components


@pytest.fixture(scope="session")
def openscm_bin() -> str:
    path = Path(os.environ.get("OPENSCM_BIN") or REPO_ROOT / "target" / "release" / "openscm")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"openscm binary not found at {path}: build it with `cargo build --release` "
            "or point OPENSCM_BIN at it",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def openssl_tool() -> str:
    return require_tool("openssl")


@pytest.fixture(scope="session")
def pg_base() -> PgBase:
    url = os.environ.get("OPENSCM_TEST_PG_URL")
    if not url:
        where = "CI (CI=true)" if os.environ.get("CI") == "true" else "this run"
        pytest.fail(
            f"OPENSCM_TEST_PG_URL is not set in {where}: the PostgreSQL backend cannot be tested. "
            "Run the suite through tests/e2e/run.sh, or export "
            "OPENSCM_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/<throwaway db>.",
            pytrace=False,
        )
    return PgBase(url)


class Backend:
    """Where a server keeps its data: 'sqlite' (inside the data dir) or 'postgres'
    (a fresh database per server, made with createdb next to OPENSCM_TEST_PG_URL)."""

    def __init__(self, name: str, pg: PgBase = None):
        self.name = name
        self.pg = pg
        self.databases = []

    def new_database_url(self):
        if self.name == "sqlite":
            return None
        url = self.pg.create()
        self.databases.append(url)
        return url

    def cleanup(self):
        for url in self.databases:
            self.pg.drop(url)
        self.databases.clear()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request):
    if request.param == "postgres":
        b = Backend("postgres", request.getfixturevalue("pg_base"))
    else:
        b = Backend("sqlite")
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.replace("test_", ""))


class ServerFactory:
    """Makes servers and guarantees they are stopped (SIGTERM, rc 0) at teardown."""

    def __init__(self, binary, root: Path, backend: Backend):
        self.binary = binary
        self.root = Path(root)
        self.backend = backend
        self.servers = []

    def new(self, name: str, config_text: str = None, database_url=None) -> Server:
        if database_url is None:
            database_url = self.backend.new_database_url() if self.backend else None
        server = Server(self.binary, self.root / name, database_url=database_url, config_text=config_text)
        self.servers.append(server)
        _LIVE_SERVERS.append(server)
        return server

    def cluster_of_two(self, prefix: str, config_text: str = None):
        """Two servers on one new database with the same master key (32 random bytes, hex, mode
        0600, as an operator gives them) and the same `config_text`, started at once on the
        empty store: (a, b, the credentials of whichever bootstrapped it)."""
        url = self.backend.new_database_url()
        a = self.new(f"{prefix}a", config_text=config_text, database_url=url)
        b = self.new(f"{prefix}b", config_text=config_text, database_url=url)
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
        creds = next(s for s in (a, b) if s.credentials_path.exists()).credentials
        return a, b, creds

    def bootstrap_then_configure(self, name: str, make_config) -> Server:
        """Start on an empty store (bootstrap writes credentials.json), stop, write the
        config that needs the bootstrap account's domain_id, start again."""
        server = self.new(name)
        server.start()
        creds = server.credentials
        server.restart(config_text=make_config(creds))
        return server

    def close(self):
        errors = []
        for server in reversed(self.servers):
            try:
                server.close()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
            finally:
                if server in _LIVE_SERVERS:
                    _LIVE_SERVERS.remove(server)
        if errors:
            raise errors[0]


@pytest.fixture(scope="module")
def servers(openscm_bin, module_tmp, backend):
    factory = ServerFactory(openscm_bin, module_tmp / backend.name, backend)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def nginx(module_tmp, backend):
    """A throwaway nginx on a free loopback port serving an initial self-signed cert from
    the files a push target writes (cert_path / key_path)."""
    with started(Nginx(module_tmp / f"nginx-{backend.name}")) as instance:
        yield instance


@pytest.fixture(scope="module")
def nginx_target_toml(nginx):
    """make_config(creds) -> TOML with a push target (ELB, cn-north-4) that deploys to `nginx`."""

    def make(creds):
        return push_target_toml(
            "e2e-nginx",
            account=creds["domain_id"],
            service="ELB",
            region="cn-north-4",
            cert_path=nginx.cert_path,
            key_path=nginx.key_path,
            test_command=nginx.test_command(),
            reload_command=nginx.reload_command(),
        )

    return make


@pytest.fixture(scope="session")
def challtestsrv(tmp_path_factory):
    """pebble-challtestsrv as the DNS server of domain validation, one for the whole run (it
    starts in well under a second, but nothing in it belongs to one test): every name resolves
    to 127.0.0.1; `set_txt`/`clear_txt` change TXT records; `dns_addr` is what a server's
    `[validation] nameservers` names. TXT records outlive the test that set them: clear them,
    or use names no other test uses."""
    with started(ChallTestSrv(tmp_path_factory.mktemp("challtestsrv"))) as instance:
        yield instance
