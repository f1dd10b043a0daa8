"""The client CLI (`openscm configure|cert|csr|tag|completions`) against a real server, once per
storage backend: every command, outputs parsed as JSON (`-o json`), the profile file (mode 0600)
and the precedence of flags, environment and profile, the exit codes (1 refused, 2 usage, 3 auth
or config, 4 network, 5 partial bulk), bulk buy stopped by the account's quota, import of a
directory, and export to PEM and PKCS#12 read back by OpenSSL and keytool; lists paged past the
API's page sizes with a "10 of 11" note on stderr; unsubscribe, cancel, push history, deployed
resources and expiry reminders; the admin CLI's tables and JSON; and every `--help` example run as
written (test_every_help_example_runs, whose rule is written above it).
"""

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from e2e_helpers import free_port, load_certs, make_csr, require_tool, self_signed_pem, spki

DOMAIN = "www.cli.test"


class Cli:
    """Runs the binary as a client with its own profile file and a clean environment."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "credentials.toml"

    def run(self, *args, env=None, input=None, check=None):
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPENSCM_")}
        base.update({"OPENSCM_CLI_CONFIG": str(self.config), "NO_COLOR": "1"})
        base.update(env or {})
        proc = subprocess.run([self.binary, *[str(a) for a in args]], capture_output=True,
                              text=True, timeout=120, env=base, input=input,
                              cwd=self.workdir)
        if check is not None:
            assert proc.returncode == check, (
                f"openscm {' '.join(map(str, args))}: rc {proc.returncode} (wanted {check})\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def json(self, *args, env=None, input=None, check=0):
        proc = self.run(*args, "-o", "json", env=env, input=input, check=check)
        return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def server(servers, nginx_target_toml):
    return servers.bootstrap_then_configure("cli", nginx_target_toml)


@pytest.fixture(scope="module")
def cli(openscm_bin, module_tmp, backend, server):
    c = Cli(openscm_bin, module_tmp / f"cli-{backend.name}")
    c.json("configure", "--from-credentials", server.credentials_path)
    return c


def issued(cli) -> str:
    cert_id = cli.json("cert", "buy")["cert"][0]["cert_id"]
    applied = cli.json("cert", "apply", cert_id, "--domain", DOMAIN)
    assert applied["status"] == "ISSUED", applied
    return cert_id


# ----------------------------------------------------------------------------- profiles


def test_configure_writes_a_private_profile_file(cli, server):
    mode = stat.S_IMODE(cli.config.stat().st_mode)
    assert mode == 0o600, oct(mode)
    text = cli.config.read_text()
    creds = server.credentials
    assert "[default]" in text and creds["access_key"] in text and server.url in text

    # From flags, the secret piped on stdin, into a second profile: the first is kept.
    out = cli.json("configure", "--profile", "second", "--endpoint", server.url,
                   "--access-key", creds["access_key"], "--project-id", creds["project_id"],
                   input=creds["secret_key"] + "\n")
    assert out["profile"] == "second" and "secret" not in json.dumps(out).lower()
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert "[default]" in cli.config.read_text() and "[second]" in cli.config.read_text()
    assert isinstance(cli.json("cert", "list", "--profile", "second"), list)

    # No secret on stdin for a new profile: a usage error, nothing written.
    before = cli.config.read_text()
    proc = cli.run("configure", "--profile", "third", "--endpoint", server.url,
                   "--access-key", "AK", input="")
    assert proc.returncode == 2, proc.stderr
    assert cli.config.read_text() == before


def test_flags_beat_environment_beats_profile(cli, server):
    creds = server.credentials
    cli.run("configure", "--profile", "badsecret", "--endpoint", server.url,
            "--access-key", creds["access_key"], input="not-the-secret\n", check=0)
    dead = f"http://127.0.0.1:{free_port()}"

    # The profile's wrong secret: authentication refused, exit 3, the API's code shown.
    proc = cli.run("cert", "list", "--profile", "badsecret", check=3)
    assert "APIGW.0301" in proc.stderr
    # OPENSCM_PROFILE picks the profile; the environment's secret wins over the profile's.
    cli.run("cert", "list", env={"OPENSCM_PROFILE": "badsecret"}, check=3)
    cli.run("cert", "list", env={"OPENSCM_PROFILE": "badsecret",
                                 "OPENSCM_SECRET_KEY": creds["secret_key"]}, check=0)
    # --profile wins over OPENSCM_PROFILE.
    cli.run("cert", "list", "--profile", "default", env={"OPENSCM_PROFILE": "badsecret"}, check=0)
    # OPENSCM_ENDPOINT wins over the profile's endpoint, --endpoint over OPENSCM_ENDPOINT.
    cli.run("cert", "list", env={"OPENSCM_ENDPOINT": dead}, check=4)
    cli.run("cert", "list", "--endpoint", server.url, env={"OPENSCM_ENDPOINT": dead}, check=0)
    # The environment alone, without any profile file.
    alone = {"OPENSCM_CLI_CONFIG": str(cli.workdir / "absent.toml"),
             "OPENSCM_ENDPOINT": server.url, "OPENSCM_ACCESS_KEY": creds["access_key"],
             "OPENSCM_SECRET_KEY": creds["secret_key"]}
    assert isinstance(cli.json("cert", "list", env=alone), list)


def test_exit_codes(cli, server):
    # Refused by the API: 1, with the SCM code in the JSON error document and on stderr.
    proc = cli.run("cert", "show", "scs0000000000000", "-o", "json", check=1)
    error = json.loads(proc.stdout)["error"]
    assert error["kind"] == "api" and error["code"] == "SCM.0020" and error["status"] == 404
    assert error["code"] in proc.stderr
    # Usage: 2.
    cli.run("cert", "frobnicate", check=2)
    cli.run("cert", "list", "--data-dir", "x", check=2)
    # Config: an unknown profile, or no profile file at all: 3.
    proc = cli.run("cert", "list", "--profile", "nope", check=3)
    assert "configure --profile nope" in proc.stderr
    cli.run("cert", "list", env={"OPENSCM_CLI_CONFIG": str(cli.workdir / "none.toml")}, check=3)
    # Network: 4.
    proc = cli.run("cert", "list", "-o", "json", "--endpoint", f"http://127.0.0.1:{free_port()}",
                   check=4)
    assert json.loads(proc.stdout)["error"]["kind"] == "network"
    # TLS: HTTPS to a plain-HTTP listener fails the handshake: 4.
    cli.run("cert", "list", "--endpoint", server.url.replace("http://", "https://"), check=4)
    # A CA file that cannot be read, or holds no certificate: configuration, 3.
    cli.run("cert", "list", env={"OPENSCM_CA_FILE": str(cli.workdir / "no-such.pem")}, check=3)
    not_pem = cli.workdir / "not.pem"
    not_pem.write_text("no certificate here\n")
    cli.run("cert", "list", env={"OPENSCM_CA_FILE": str(not_pem)}, check=3)


# ----------------------------------------------------------------------------- certificates


def test_buy_apply_show_list_push_delete(cli, server, nginx):
    cert_id = issued(cli)
    shown = cli.json("cert", "show", cert_id)
    assert shown["id"] == cert_id and shown["status"] == "ISSUED" and shown["domain"] == DOMAIN
    listed = cli.json("cert", "list", "--status", "ISSUED")
    assert cert_id in [c["id"] for c in listed]
    table = cli.run("cert", "list", check=0).stdout
    assert table.splitlines()[0].split()[:4] == ["ID", "NAME", "DOMAIN", "STATUS"]
    assert cert_id in table

    pushed = cli.json("cert", "push", cert_id, "--service", "ELB", "--region", "cn-north-4")
    assert pushed["certificate_id"] == cert_id
    leaf = cli.json("cert", "show", cert_id)["fingerprint"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        served = load_certs(Path(nginx.cert_path).read_bytes())
        if served and served[0].fingerprint(hashes.SHA1()).hex() == leaf:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the pushed certificate never reached nginx's files")
    # No target for this service: refused.
    cli.run("cert", "push", cert_id, "--service", "CDN", "--region", "cn-north-4", check=1)

    assert cli.json("cert", "delete", cert_id) == {"deleted": [cert_id]}
    cli.run("cert", "show", cert_id, check=1)


def test_export_pem_and_pkcs12(cli, openssl_tool):
    keytool = require_tool("keytool")
    cert_id = issued(cli)
    out_dir = cli.workdir / "export"
    pw_file = cli.workdir / "p12.pass"
    pw_file.write_text("correct horse\n")
    done = cli.json("cert", "export", cert_id, "--dir", out_dir, "--name", "shop",
                    "--pkcs12", "--password-file", pw_file)
    files = {k: Path(v) if Path(v).is_absolute() else cli.workdir / v
             for k, v in done["files"].items()}
    assert set(files) == {"crt", "key", "p12"}
    assert files["crt"].name == "shop.crt" and files["p12"].name == "shop.p12"
    assert stat.S_IMODE(files["key"].stat().st_mode) == 0o600
    assert stat.S_IMODE(files["p12"].stat().st_mode) == 0o600
    chain = load_certs(files["crt"].read_bytes())
    assert len(chain) == 2  # leaf + intermediate
    key = serialization.load_pem_private_key(files["key"].read_bytes(), None)
    assert spki(key.public_key()) == spki(chain[0].public_key())

    # OpenSSL 3 reads the PKCS#12 back: the same certificate, the same key.
    proc = subprocess.run([openssl_tool, "pkcs12", "-in", files["p12"], "-passin",
                           "pass:correct horse", "-nodes"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    back = load_certs(proc.stdout.encode())
    assert back[0] == chain[0] and set(c.serial_number for c in back) == {
        c.serial_number for c in chain}
    start = proc.stdout.index("-----BEGIN PRIVATE KEY-----")
    end = proc.stdout.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")
    p12_key = serialization.load_pem_private_key(proc.stdout[start:end].encode(), None)
    assert spki(p12_key.public_key()) == spki(chain[0].public_key())
    assert "friendlyName: shop" in proc.stdout
    # A wrong password is refused.
    wrong = subprocess.run([openssl_tool, "pkcs12", "-in", files["p12"], "-passin", "pass:wrong",
                            "-nodes"], capture_output=True, text=True)
    assert wrong.returncode != 0 and "mac verify" in wrong.stderr.lower()

    # Java's keytool lists one private-key entry with its two-certificate chain.
    proc = subprocess.run([keytool, "-list", "-v", "-keystore", files["p12"], "-storetype",
                           "PKCS12", "-storepass", "correct horse"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PrivateKeyEntry" in proc.stdout and "Alias name: shop" in proc.stdout
    assert "Certificate chain length: 2" in proc.stdout
    bad = subprocess.run([keytool, "-list", "-keystore", files["p12"], "-storetype", "PKCS12",
                          "-storepass", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0

    # The password from an environment variable; without any password source: usage error.
    env_dir = cli.workdir / "export-env"
    cli.json("cert", "export", cert_id, "--dir", env_dir, "--pkcs12", "--password-env", "P12",
             env={"P12": "from-env"})
    proc = subprocess.run([openssl_tool, "pkcs12", "-in", env_dir / f"{cert_id}.p12", "-passin",
                           "pass:from-env", "-nodes"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cli.run("cert", "export", cert_id, "--dir", env_dir, "--pkcs12", input="", check=2)


def test_import_a_file_and_a_directory(cli):
    single = cli.workdir / "single.pem"
    cert, key = self_signed_pem("one.cli.test", ["one.cli.test"])
    single.write_bytes(cert + key)
    one = cli.json("cert", "import", single, "--name", "one")
    assert cli.json("cert", "show", one["certificate_id"])["name"] == "one"

    good = cli.workdir / "import-ok"
    good.mkdir()
    for name in ("site-a", "site-b"):
        cert, key = self_signed_pem(f"{name}.cli.test", [f"{name}.cli.test"])
        if name == "site-a":
            (good / "site-a.pem").write_bytes(cert + key)  # one PEM with certificate and key
        else:
            (good / "site-b.crt").write_bytes(cert)  # NAME.crt + NAME.key
            (good / "site-b.key").write_bytes(key)
    summary = cli.json("cert", "import", good)
    assert [Path(d["file"]).name for d in summary["done"]] == ["site-a.pem", "site-b.crt"]
    assert summary["failed"] == [] and summary["not_done"] == []
    names = {cli.json("cert", "show", d["certificate_id"])["name"] for d in summary["done"]}
    assert names == {"site-a", "site-b"}

    # A file without its key in the middle: what was done, the failure, what was not done, exit 5.
    mixed = cli.workdir / "import-mixed"
    mixed.mkdir()
    for name in ("mix-a", "mix-b", "mix-c"):
        cert, key = self_signed_pem(f"{name}.cli.test", [f"{name}.cli.test"])
        (mixed / f"{name}.crt").write_bytes(cert if name == "mix-b" else cert + key)
    proc = cli.run("cert", "import", mixed, "--concurrency", "1", "-o", "json", check=5)
    summary = json.loads(proc.stdout)
    assert [Path(d["file"]).name for d in summary["done"]] == ["mix-a.crt"]
    assert [Path(f["file"]).name for f in summary["failed"]] == ["mix-b.crt"]
    assert "mix-b.key" in summary["failed"][0]["error"]["message"]
    assert [Path(f).name for f in summary["not_done"]] == ["mix-c.crt"]
    assert "not done" in proc.stderr


def test_bulk_buy(cli):
    proc = cli.run("cert", "buy", "--count", "20", "-o", "json", check=0)
    summary = json.loads(proc.stdout)
    assert summary["requested"] == 20 and len(set(summary["done"])) == 20
    assert summary["failed"] == [] and summary["not_started"] == 0
    assert "bought 20 of 20" in proc.stderr
    listed = {c["id"] for c in cli.json("cert", "list", "--status", "ALL", "--limit", "50")}
    assert set(summary["done"]) <= listed or len(listed) == 50


def test_bulk_buy_stopped_by_the_quota(servers, openscm_bin, module_tmp, backend):
    quota = servers.new("cli-quota", config_text="[quotas]\ncertificates_per_account = 10\n")
    quota.start()
    c = Cli(openscm_bin, module_tmp / f"cli-quota-{backend.name}")
    c.json("configure", "--from-credentials", quota.credentials_path)
    proc = c.run("cert", "buy", "--count", "40", "-o", "json", check=5)
    summary = json.loads(proc.stdout)
    assert summary["requested"] == 40
    assert len(summary["done"]) == 10, summary
    assert summary["failed"], summary
    assert len(summary["done"]) + len(summary["failed"]) + summary["not_started"] == 40
    assert summary["not_started"] > 0
    assert all(f["error"]["kind"] == "api" for f in summary["failed"])
    assert "quota" in summary["failed"][0]["error"]["message"].lower()
    assert "bought 10 of 40" in proc.stderr


# ----------------------------------------------------------------------------- csr and tags


def test_csr_commands(cli):
    made = cli.json("csr", "create", "--name", "cli-csr", "--domain", "csr.cli.test",
                    "--sans", "api.cli.test")
    csr_id = made["id"]
    assert csr_id in [c["id"] for c in cli.json("csr", "list")]
    shown = cli.json("csr", "show", csr_id)
    assert shown["name"] == "cli-csr" and "BEGIN CERTIFICATE REQUEST" in shown["csr"]
    assert cli.json("csr", "update", csr_id, "--name", "renamed")["name"] == "renamed"
    key_file = cli.workdir / "csr.key"
    cli.json("csr", "key", csr_id, "--out", key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    csr = x509.load_pem_x509_csr(shown["csr"].encode())
    assert spki(key.public_key()) == spki(csr.public_key())

    csr_pem, ext_key = make_csr(["ext.cli.test"])
    (cli.workdir / "ext.csr").write_text(csr_pem)
    (cli.workdir / "ext.key").write_bytes(ext_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    up = cli.json("csr", "upload", "--name", "ext", "--csr", cli.workdir / "ext.csr", "--key",
                  cli.workdir / "ext.key")
    assert up["name"] == "ext"
    assert cli.json("csr", "delete", csr_id, up["id"]) == {"deleted": [csr_id, up["id"]]}
    cli.run("csr", "show", csr_id, check=1)
    # A failure in the middle: what was deleted, the failure, what was not done; exit code 5.
    first = cli.json("csr", "create", "--name", "cli-csr-a", "--domain", "a.csr.cli.test")["id"]
    last = cli.json("csr", "create", "--name", "cli-csr-b", "--domain", "b.csr.cli.test")["id"]
    partial = cli.json("csr", "delete", first, csr_id, last, check=5)
    assert partial["deleted"] == [first] and partial["not_done"] == [last], partial
    assert [f["id"] for f in partial["failed"]] == [csr_id], partial
    assert partial["failed"][0]["error"]["code"].startswith("SCM."), partial
    assert last in [c["id"] for c in cli.json("csr", "list")]
    assert cli.json("csr", "delete", last) == {"deleted": [last]}


def test_tag_commands(cli):
    cert_id = cli.json("cert", "buy")["cert"][0]["cert_id"]
    cli.json("tag", "add", cert_id, "env=cli")
    cli.json("tag", "add", cert_id, "team=web", "tier=gold")
    tags = {t["key"]: t["value"] for t in cli.json("tag", "list", cert_id)}
    assert tags == {"env": "cli", "team": "web", "tier": "gold"}
    all_tags = {t["key"]: t["values"] for t in cli.json("tag", "all")}
    assert "cli" in all_tags["env"]
    found = cli.json("tag", "find", "env=cli", "tier=gold")
    assert cert_id in [r["resource_id"] for r in found]
    cli.json("tag", "delete", cert_id, "team", "tier=gold")
    assert [t["key"] for t in cli.json("tag", "list", cert_id)] == ["env"]
    assert cert_id not in [r["resource_id"] for r in cli.json("tag", "find", "tier=gold")]


# ----------------------------------------------------------------------------- help, completions


def test_completions_and_help(cli):
    bash = cli.run("completions", "bash", check=0).stdout
    assert "_openscm()" in bash and "complete -F _openscm" in bash and "export" in bash
    for shell in ("zsh", "fish"):
        assert "openscm" in cli.run("completions", shell, check=0).stdout
    # Store options belong to server and admin, client options to the client commands.
    assert "--data-dir" not in cli.run("--help", check=0).stdout
    cert_help = cli.run("cert", "export", "--help", check=0).stdout
    assert "--data-dir" not in cert_help and "--profile" in cert_help and "Examples:" in cert_help
    assert "--data-dir" in cli.run("server", "--help", check=0).stdout
    assert "--data-dir" in cli.run("admin", "--help", check=0).stdout
    assert "--profile" not in cli.run("server", "--help", check=0).stdout


# ----------------------------------------------------------------------------- lists


def test_lists_page_and_say_how_many_they_show(servers, openscm_bin, module_tmp, backend):
    """`cert list`, `csr list` and `tag find` show --limit items (any from 1; 10 by default),
    fetched in the API's pages of 10 to 50, say on stderr when there are more, and --all shows
    every one; stdout stays one JSON document with -o json."""
    srv = servers.new("cli-pages")
    srv.start()
    c = Cli(openscm_bin, module_tmp / f"cli-pages-{backend.name}")
    c.json("configure", "--from-credentials", srv.credentials_path)
    bought = c.json("cert", "buy", "--count", "61")["done"]
    assert len(bought) == 61

    # The default page: 10 of 61, said on stderr, in the table and in JSON alike.
    proc = c.run("cert", "list", "--status", "ALL", check=0)
    assert len(proc.stdout.splitlines()) == 1 + 10, proc.stdout
    assert "10 of 61 certificates" in proc.stderr and "--all" in proc.stderr, proc.stderr
    proc = c.run("cert", "list", "--status", "ALL", "-o", "json", check=0)
    assert len(json.loads(proc.stdout)) == 10 and "10 of 61" in proc.stderr
    # --all: every one (two pages of 50 and 11), no note.
    proc = c.run("cert", "list", "--status", "ALL", "--all", "-o", "json", check=0)
    listed = [x["id"] for x in json.loads(proc.stdout)]
    assert sorted(listed) == sorted(bought) and proc.stderr == "", proc.stderr
    # Small limits and offsets; a limit beyond one page; an offset at the end.
    five = [x["id"] for x in c.json("cert", "list", "--status", "ALL", "--limit", "5")]
    assert five == listed[:5]
    proc = c.run("cert", "list", "--status", "ALL", "--limit", "5", "--offset", "5", "-o", "json",
                 check=0)
    assert [x["id"] for x in json.loads(proc.stdout)] == listed[5:10]
    assert "certificates 6 to 10 of 61" in proc.stderr and "--offset 10" in proc.stderr
    assert len(c.json("cert", "list", "--status", "ALL", "--limit", "55")) == 55
    proc = c.run("cert", "list", "--status", "ALL", "--offset", "60", "-o", "json", check=0)
    assert [x["id"] for x in json.loads(proc.stdout)] == listed[60:]
    # Times in JSON are RFC 3339; in the table readable UTC.
    done_id = issued(c)
    shown = c.json("cert", "list", "--status", "ISSUED")
    assert [x["id"] for x in shown] == [done_id]
    assert shown[0]["expire_time"].endswith("Z") and "T" in shown[0]["expire_time"], shown
    row = c.run("cert", "list", "--status", "ISSUED", check=0).stdout.splitlines()[1]
    assert row.endswith(" UTC"), row

    # Refused limits: usage errors (2), nothing asked of the server.
    for bad in (["--limit", "0"], ["--limit", "-1"], ["--limit", "x"], ["--offset", "2000000"],
                ["--limit", "5", "--all"]):
        proc = c.run("cert", "list", *bad, check=2)
        assert "--limit" in proc.stderr or "--offset" in proc.stderr, proc.stderr
        c.run("csr", "list", *bad, check=2)

    # CSRs: 12, shown 5 at a time.
    for i in range(12):
        c.json("csr", "create", "--name", f"page-{i}", "--domain", f"p{i}.cli.test")
    proc = c.run("csr", "list", "--limit", "5", "-o", "json", check=0)
    assert len(json.loads(proc.stdout)) == 5 and "5 of 12 CSRs" in proc.stderr, proc.stderr
    assert len(c.json("csr", "list", "--all")) == 12
    table = c.run("csr", "list", check=0)
    assert table.stdout.splitlines()[0].split()[-1] == "CREATED" and "10 of 12" in table.stderr

    # Tags: 11 certificates with one tag.
    for cert_id in listed[:11]:
        c.json("tag", "add", cert_id, "page=yes")
    proc = c.run("tag", "find", "page=yes", "-o", "json", check=0)
    assert len(json.loads(proc.stdout)) == 10 and "10 of 11 certificates" in proc.stderr
    assert {r["resource_id"] for r in c.json("tag", "find", "page", "--all")} == set(listed[:11])


# ----------------------------------------------------------------------------- more of the API


def test_unsubscribe_and_cancel(cli, server):
    # A bought certificate is unsubscribed (delete refuses it: not issued), then gone.
    paid = cli.json("cert", "buy")["cert"][0]["cert_id"]
    proc = cli.run("cert", "delete", paid, check=1)
    assert "SCM.0010" in proc.stderr, proc.stderr
    assert cli.json("cert", "unsubscribe", paid) == {"unsubscribed": [paid]}
    cli.run("cert", "show", paid, check=1)
    table = cli.run("cert", "unsubscribe", cli.json("cert", "buy")["cert"][0]["cert_id"], check=0)
    assert table.stdout.splitlines()[0] == "UNSUBSCRIBED"
    # Unknown, malformed, or imported (no order): refused with the API's code, exit 1.
    proc = cli.run("cert", "unsubscribe", "scs0000000000000", check=1)
    assert "SCM.0020" in proc.stderr, proc.stderr
    proc = cli.run("cert", "unsubscribe", "not-an-id", "-o", "json", check=1)
    assert json.loads(proc.stdout)["error"]["kind"] == "api", proc.stdout
    pem = cli.workdir / "unsub.pem"
    cert, key = self_signed_pem("unsub.cli.test", ["unsub.cli.test"])
    pem.write_bytes(cert + key)
    imported = cli.json("cert", "import", pem)["certificate_id"]
    proc = cli.run("cert", "unsubscribe", imported, check=1)
    assert "SCM.0010" in proc.stderr, proc.stderr
    # Several, one failing in the middle: what was done, the failure, what was not; exit 5.
    first = cli.json("cert", "buy")["cert"][0]["cert_id"]
    last = cli.json("cert", "buy")["cert"][0]["cert_id"]
    partial = cli.json("cert", "unsubscribe", first, imported, last, check=5)
    assert partial["unsubscribed"] == [first] and partial["not_done"] == [last], partial
    assert [f["id"] for f in partial["failed"]] == [imported]
    cli.json("cert", "unsubscribe", last)

    # cancel: only an application under review (an issued certificate is refused).
    done = issued(cli)
    proc = cli.run("cert", "cancel", done, check=1)
    assert "SCM.0010" in proc.stderr, proc.stderr
    cli.run("cert", "cancel", "scs0000000000000", check=1)
    cli.run("cert", "cancel", check=2)


def test_push_history_deployed_and_notifications(cli, server, nginx):
    cert_id = issued(cli)
    # Never pushed: an empty history, said on stderr.
    proc = cli.run("cert", "history", cert_id, check=0)
    assert proc.stdout.split() == ["TIME", "SERVICE", "REGION"] and "never pushed" in proc.stderr
    cli.json("cert", "push", cert_id, "--service", "ELB", "--region", "cn-north-4")
    history = cli.json("cert", "history", cert_id)["push_history_list"]
    assert [(h["push_service"], h["push_remote_project"]) for h in history] == [
        ("ELB", "cn-north-4")], history
    assert history[0]["push_time"].endswith("Z"), history  # RFC 3339 in JSON
    table = cli.run("cert", "push-history", cert_id, check=0).stdout.splitlines()
    assert len(table) == 2 and "UTC" in table[1] and "cn-north-4" in table[1], table
    # The push history needs the profile's project id: without one, a configuration error (3).
    creds = server.credentials
    no_project = {"OPENSCM_CLI_CONFIG": str(cli.workdir / "absent.toml"),
                  "OPENSCM_ENDPOINT": server.url, "OPENSCM_ACCESS_KEY": creds["access_key"],
                  "OPENSCM_SECRET_KEY": creds["secret_key"]}
    proc = cli.run("cert", "history", cert_id, env=no_project, check=3)
    assert "project id" in proc.stderr, proc.stderr
    cli.run("cert", "history", "scs0000000000000", check=1)

    # Deployed resources: the nginx target, for ELB in cn-north-4.
    deployed = cli.json("cert", "deployed", cert_id, "--service", "ELB")["results"]
    assert [r["certificate_id"] for r in deployed] == [cert_id], deployed
    places = [(d["service"], rr["region_id"], [x["resource_name"] for x in rr["resources"]])
              for d in deployed[0]["deployed_resources"] for rr in d["region_resources"]]
    assert places == [("ELB", "cn-north-4", ["e2e-nginx"])], places
    table = cli.run("cert", "deployed", cert_id, check=0).stdout.splitlines()
    assert table[0].split() == ["CERTIFICATE", "SERVICE", "REGION", "RESOURCE", "ERROR"]
    assert "e2e-nginx" in table[1], table
    cli.run("cert", "deployed", cert_id, "--service", "FTP", check=2)
    cli.run("cert", "deployed", *[cert_id] * 51, check=2)
    cli.run("cert", "deployed", "scs0000000000000", check=1)

    # Expiry reminders off and on, one kind or both.
    off = cli.json("cert", "notifications", cert_id, "off")
    assert off == {"certificate_id": cert_id, "notifications": "off",
                   "kinds": ["CERT_EXPIRING", "CERT_EXPIRED"]}, off
    on = cli.json("cert", "notifications", cert_id, "on", "--kind", "CERT_EXPIRED")
    assert on["kinds"] == ["CERT_EXPIRED"], on
    cli.run("cert", "notifications", cert_id, "maybe", check=2)
    cli.run("cert", "notifications", cert_id, "on", "--kind", "CERT_LOST", check=2)
    proc = cli.run("cert", "notifications", "scs0000000000000", "off", check=1)
    assert "SCM.0020" in proc.stderr, proc.stderr

    # A push to a target by name; a name that is no target is refused, saying so.
    cli.json("cert", "push", cert_id, "--target", "e2e-nginx")
    proc = cli.run("cert", "push", cert_id, "--target", "no-such-target", check=1)
    assert "SCM.0030" in proc.stderr and "\"no-such-target\"" in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------- admin output


def test_admin_prints_tables_and_json(server):
    """`openscm admin` prints a table unless -o json, whose times are RFC 3339; failures with
    -o json print an error document."""
    accounts = server.admin("account", "list", parse=False).stdout.splitlines()
    assert accounts[0].split() == ["DOMAIN", "ID", "NAME", "POLICY"], accounts
    jobs = server.admin("job", "list", parse=False).stdout.splitlines()
    assert jobs[0].split()[:3] == ["ID", "KIND", "STATE"], jobs
    assert all(" UTC" in line for line in jobs[1:]), jobs
    listed = server.admin("job", "list")
    assert isinstance(listed, list) and listed, listed
    for j in listed:
        assert j["created"].endswith("Z") and j["due"].endswith("Z"), j
        assert not [k for k in j if k.endswith("_ms")], j
    creds = server.admin("credential", "list")
    assert all(c["created"].endswith("Z") for c in creds), creds
    table = server.admin("credential", "list", parse=False).stdout.splitlines()
    assert table[0].split()[:2] == ["ACCESS", "KEY"] and " UTC" in table[1], table
    shown = server.admin("policy", "show", "--account", server.credentials["domain_id"],
                         parse=False).stdout.splitlines()
    assert shown[0].split() == ["FIELD", "VALUE"] and any(
        line.startswith("allowed") for line in shown), shown
    audit = server.admin("audit", "--limit", "3")
    assert isinstance(audit, list) and all(e["time"].endswith("Z") for e in audit), audit
    failed = server.admin("policy", "show", "--account", "0" * 32, "-o", "json", check=False,
                          parse=False)
    assert failed.returncode == 1 and "no account" in failed.stderr, failed.stderr
    assert json.loads(failed.stdout)["error"]["message"].startswith("no account"), failed.stdout
    bad = server.admin("job", "list", "--limit", "0", check=False, parse=False)
    assert bad.returncode == 2, bad.stderr


# ----------------------------------------------------------------------------- help examples
#
# Every "Examples:" block of every `--help` runs as written (test_every_help_example_runs).
# The rule, so that the examples stay true:
# - The commands are visited in the order `--help` lists them, depth first from `openscm
#   --help`. A block seen before (csr and tag share one among their subcommands) is not run again.
# - An example is one indented line of the block (a line ending in `\` goes on on the next). It
#   runs with `bash -o pipefail -ec`, stdin empty, in one working directory shared by all, HOME a
#   fresh directory, and must exit 0.
# - The store is bootstrapped in that directory first (./openscm-data, as `openscm server`
#   makes it), so that the config can name its account; then OPENSCM_CONFIG names a config with
#   one push target "edge" (kind files; ELB in cn-north-4) whose DNS validation asks 127.0.0.1,
#   and OPENSCM_LISTEN a free port on 127.0.0.1. `openscm server` runs in the background until
#   it answers /health and is stopped at the end.
# - Placeholders are replaced by what earlier examples printed:
#   - scs1700000000000: the newest certificate that an example running `openscm cert buy` or
#     `openscm cert import` printed and that still exists; scs1700000000001 the one before it;
#   - CSR_ID: the newest CSR id printed by `openscm csr create` or `openscm csr upload`;
#   - ACCOUNT_ID: the newest domain id printed by `openscm admin account create`;
#   - ACCESS_KEY: the newest access key printed by `openscm admin credential create`.
#   So an example that needs a certificate in a given state comes after one that makes it (the
#   blocks of `cert apply`, `cert cancel` and `cert unsubscribe` buy their own).

import re as _re  # noqa: E402
import signal as _signal  # noqa: E402

import requests as _requests  # noqa: E402

from e2e_helpers import wait_until  # noqa: E402

_CERT_ID = _re.compile(r"\bscs\d{13}\b")
_PLACEHOLDER = _re.compile(r"\bscs17000000000(\d\d)\b")
_HEX32 = _re.compile(r"\b[0-9a-f]{32}\b")


def _subcommands(help_text: str) -> list:
    """The subcommands a `--help` lists under "Commands:", in its order (not `help`)."""
    names, inside = [], False
    for line in help_text.splitlines():
        if line.strip() == "Commands:":
            inside = True
            continue
        if inside:
            if not line.startswith("  ") or not line.strip():
                break
            name = line.split()[0]
            if name != "help":
                names.append(name)
    return names


def _examples(help_text: str) -> list:
    """The example command lines of a `--help` (continuations joined), in order."""
    lines = help_text.splitlines()
    if "Examples:" not in [x.strip() for x in lines]:
        return []
    start = [x.strip() for x in lines].index("Examples:") + 1
    out, current = [], ""
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        text = line.strip()
        if current:
            current += " " + text
        else:
            current = text
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        out.append(current)
        current = ""
    return out


def test_help_examples_are_found():
    text = """Usage: x

Commands:
  list   List
  auto-renew  Turn  [aliases: ar]
  help   Print this

Examples:
  openscm a --b \\
      --c d   # comment
  openscm e | jq .
Prose after the examples.
  not an example"""
    assert _subcommands(text) == ["list", "auto-renew"]
    assert _examples(text) == ["openscm a --b --c d   # comment", "openscm e | jq ."]


def test_every_help_example_runs(openscm_bin, tmp_path, openssl_tool):
    require_tool("jq")
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSCM_")}
    env.update({"HOME": str(home), "NO_COLOR": "1", "OPENSCM_LISTEN": f"127.0.0.1:{port}",
                "PATH": f"{Path(openscm_bin).parent}:{env.get('PATH', '')}"})

    def healthy():
        try:
            return _requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except _requests.RequestException:
            return False

    def start_server():
        proc = subprocess.Popen([openscm_bin, "server"], cwd=work, env=env,
                                stdin=subprocess.DEVNULL, stdout=(work / "server.out").open("ab"),
                                stderr=subprocess.STDOUT)
        wait_until(lambda: healthy() or proc.poll() is not None, 30, "the server to answer",
                   interval=0.05)
        assert proc.poll() is None, (work / "server.out").read_text()
        return proc

    def stop(proc):
        proc.send_signal(_signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (work / "server.out").read_text()

    # Bootstrap, then the config that names the account.
    stop(start_server())
    account = json.loads((work / "openscm-data" / "credentials.json").read_text())["domain_id"]
    served = work / "served"
    served.mkdir()
    (work / "openscm.toml").write_text(f"""
[validation]
nameservers = ["127.0.0.1:{free_port()}"]

[[push_targets]]
name = "edge"
kind = "files"
account = "{account}"
service = "ELB"
region = "cn-north-4"
files = [
  {{ path = "{served}/fullchain.pem", content = "fullchain" }},
  {{ path = "{served}/key.pem", content = "key", mode = "0600" }},
]
""")
    env["OPENSCM_CONFIG"] = str(work / "openscm.toml")

    # Every block, in --help order.
    blocks, seen = [], set()

    def visit(path):
        text = subprocess.run([openscm_bin, *path, "--help"], capture_output=True, text=True,
                              env=env, check=True).stdout
        block = _examples(text)
        if block and tuple(block) not in seen:
            seen.add(tuple(block))
            blocks.append((" ".join(["openscm", *path]), block))
        for sub in _subcommands(text):
            visit([*path, sub])

    visit([])
    commands = {name for name, _ in blocks}
    for wanted in ("openscm", "openscm cert apply", "openscm cert unsubscribe",
                   "openscm cert history", "openscm cert deployed", "openscm cert notifications",
                   "openscm admin job", "openscm admin audit", "openscm configure"):
        assert wanted in commands, f"no examples for {wanted}: {sorted(commands)}"

    certs, csrs, accounts, keys = [], [], [], []
    server = None

    def exists(cert_id):
        return subprocess.run([openscm_bin, "cert", "show", cert_id], cwd=work, env=env,
                              capture_output=True).returncode == 0

    def substitute(line):
        def cert(m):
            live = [c for c in reversed(certs) if exists(c)]
            n = int(m.group(1))
            assert n < len(live), f"{line}: no certificate #{n} (made: {certs})"
            return live[n]
        line = _PLACEHOLDER.sub(cert, line)
        for name, made in (("CSR_ID", csrs), ("ACCOUNT_ID", accounts), ("ACCESS_KEY", keys)):
            if name in line:
                assert made, f"{line}: no earlier example printed a {name}"
                line = line.replace(name, made[-1])
        return line

    try:
        ran = 0
        for where, block in blocks:
            for example in block:
                line = substitute(example)
                if _re.match(r"openscm server\b", line):
                    server = start_server()
                    ran += 1
                    continue
                proc = subprocess.run(["bash", "-o", "pipefail", "-ec", line], cwd=work, env=env,
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      timeout=120)
                assert proc.returncode == 0, (
                    f"`{where} --help` example failed (exit {proc.returncode}):\n  {example}\n"
                    f"ran as:\n  {line}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
                ran += 1
                out = proc.stdout
                if "openscm cert buy" in line or "openscm cert import" in line:
                    certs.extend(_CERT_ID.findall(out))
                if "openscm csr create" in line or "openscm csr upload" in line:
                    csrs.extend(_HEX32.findall(out)[:1])
                if "openscm admin account create" in line:
                    accounts.extend(_HEX32.findall(out)[:1])
                if "openscm admin credential create" in line:
                    keys.extend(_re.findall(r"access_key\s+(\S+)", out)[:1])
        assert ran > 60, ran
    finally:
        if server is not None:
            stop(server)
