#!/usr/bin/env python3
"""ACME benchmark: certificates issued per second through a real ACME CA, Debian's Pebble 2.4.0
with real http-01 validation (PEBBLE_VA_NOSLEEP=1, no badNonce, no authorization reuse), every
name resolved by a BIND `named` authoritative for shop.test. (all names 127.0.0.1); one order
per certificate, one name each (bench-<i>.shop.test).

The peer is lego (Debian 4.9.1), one `lego run` per certificate, all on one ACME account:
- `--parallel 1` (default): one run after the other, each with lego's own http-01 listener
  (`--http --http.port 127.0.0.1:<httpPort>`): lego listens only while it runs, and two runs
  cannot share the port;
- `--parallel K` (K > 1): K runs at once; each writes its token into one shared webroot
  (`--http.webroot`) that a small HTTP server of this script serves on httpPort. The first run
  goes alone (it registers the account), then up to K at once.
The time is wall-clock from the first lego start to the last lego exit. lego sleeps 5 s after
answering a challenge before it first looks at the authorization (Pebble sends no Retry-After),
which is most of its time per certificate: the figure is lego's, not Pebble's, limit.

OpenSCM's side (`openscm_side()`): the same N certificates through the same Pebble, all N
applications in flight at once, http-01 on OpenSCM's own listener; with `--rss-certificates M`,
M more and the server's resident set with N + M ACME-issued certificates under management.

    bench/acme.py [--certificates N] [--parallel K] [--rss-certificates M] [--keep]

It runs under the e2e suite's venv (<repo>/.venv-e2e, made by `tests/e2e/run.sh --prepare-only`)
and uses the suite's components (tests/e2e/acme_support.py); started with another interpreter it
runs itself again with the venv's. Needs pebble, lego and bind9 (Debian packages).
"""

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv-e2e" / "bin" / "python"
sys.path.insert(0, str(REPO / "tests" / "e2e"))
# The Huawei SDK (imported by the suite's helpers) writes ~/.huaweicloud/application_id when it
# is imported: keep it out of the real home, as the suite does.
# (One directory, kept across the re-execution under the venv's interpreter below.)
import tempfile  # noqa: E402
if not os.environ.get("OPENSCM_BENCH_ACME_HOME"):
    os.environ["OPENSCM_BENCH_ACME_HOME"] = tempfile.mkdtemp(prefix="openscm-bench-acme-home-")
os.environ["HOME"] = os.environ["OPENSCM_BENCH_ACME_HOME"]

try:
    import requests  # noqa: F401
    from acme_support import ListenerCA, Named, Pebble
    from e2e_helpers import ServedInThread, free_port, require_tool
except ImportError as exc:
    if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    sys.exit(f"bench/acme.py: {exc}; make the venv first: tests/e2e/run.sh --prepare-only")

import concurrent.futures  # noqa: E402
import functools  # noqa: E402
import http.server  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402


def machine() -> str:
    """As the Rust benchmarks say it (bench/src/lib.rs machine())."""
    model, mem_kib = "unknown processor", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, {mem_kib / 1048576:.1f} GiB"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (from /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Webroot(ServedInThread):
    """The webroot the lego runs write their tokens into, served over plain HTTP on
    127.0.0.1:`port` (Pebble's httpPort) by a thread of this process."""

    def __init__(self, root: Path, port: int):
        self.root = root
        (root / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), functools.partial(Handler, directory=str(root))), poll_interval=0.05)



def lego_side(args, work: Path, pebble: Pebble) -> dict:
    """N lego runs against `pebble`; returns the figures, or exits with lego's words on a failure."""
    lego = require_tool("lego")
    path = work / "lego"
    env = dict(os.environ, LEGO_CA_CERTIFICATES=str(pebble.trust_roots_file))
    if args.parallel > 1:
        solver = ["--http", "--http.webroot", str(work / "webroot")]
    else:
        solver = ["--http", "--http.port", f"127.0.0.1:{pebble.http_port}"]

    def one(i: int) -> float:
        name = f"bench-{i}.shop.test"
        t0 = time.monotonic()
        result = subprocess.run(
            [lego, "--server", pebble.directory_url, "--accept-tos", "--email", "bench@shop.test",
             "--path", str(path), "-d", name, *solver, "run"],
            env=env, capture_output=True, text=True, timeout=args.timeout)
        took = time.monotonic() - t0
        if result.returncode != 0 or not (path / "certificates" / f"{name}.crt").exists():
            raise RuntimeError(f"lego run for {name} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}\n{pebble.output()}")
        return took

    orders_before = len(pebble.orders_created())
    issued_before = len(pebble.issued_serials())
    pebble_cpu0, lego_cpu0 = cpu_seconds(pebble.proc.pid), children_cpu()
    durations = []
    t0 = time.monotonic()
    if args.parallel > 1:
        with Webroot(work / "webroot", pebble.http_port):
            durations.append(one(0))  # alone: it registers the account the others use
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                durations += list(pool.map(one, range(1, args.certificates)))
    else:
        for i in range(args.certificates):
            durations.append(one(i))
    wall = time.monotonic() - t0
    orders = len(pebble.orders_created()) - orders_before
    issued = len(pebble.issued_serials()) - issued_before
    if orders != args.certificates or issued != args.certificates:
        sys.exit(f"Pebble saw {orders} orders and issued {issued} certificates, "
                 f"not {args.certificates}:\n{pebble.output()}")
    return {
        "wall": wall,
        "rate": args.certificates / wall,
        "min": min(durations),
        "p50": statistics.median(durations),
        "max": max(durations),
        "lego_cpu": (children_cpu() - lego_cpu0) / args.certificates,
        "pebble_cpu": (cpu_seconds(pebble.proc.pid) - pebble_cpu0) / args.certificates,
        # ru_maxrss: the largest single child (a lego run) so far, KiB on Linux
        "lego_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def openscm_binary() -> str:
    """$OPENSCM_BIN, else the newest of the build profiles' binaries."""
    if os.environ.get("OPENSCM_BIN"):
        return os.environ["OPENSCM_BIN"]
    built = [REPO / "target" / p / "openscm" for p in ("ci", "release", "debug")]
    built = [b for b in built if b.exists()]
    if not built:
        sys.exit("bench/acme.py: no openscm binary: build one or set OPENSCM_BIN")
    return str(max(built, key=lambda b: b.stat().st_mtime))


def proc_status_kib(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class OpenSCM:
    """One openscm server whose GLOBALSIGN brand is issued by `pebble` (http-01 on its listener)."""

    def __init__(self, work: Path, pebble: Pebble):
        from e2e_helpers import Server  # the suite's server control
        config = "\n".join([
            "[quotas]", "certificates_per_account = 1000000", "orders_per_day = 1000000",
            "[limits]", "max_tokens_per_credential = 1000",
            pebble.issuer_toml("pebble", challenges=("http-01",),
                               extra="max_orders = 100000\nmax_orders_window_minutes = 1"),
            "[acme]", f'http01_listen = "{pebble.http01_listen}"',
            "[brands]", 'GLOBALSIGN = ["pebble"]', ""])
        self.server = Server(openscm_binary(), work / "openscm", config_text=config)
        self.server.start(timeout=60)
        self.creds = self.server.credentials

    def buy(self, n: int) -> list:
        ids = []
        while len(ids) < n:
            batch = min(100, n - len(ids))
            r = self.server.v3("POST", "/v3/scm/certificates/buy", {
                "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT",
                "domain_type": "SINGLE_DOMAIN", "effective_time": 1, "domain_numbers": 1,
                "order_number": batch, "agree_privacy_protection": True})
            if r.status != 200:
                raise RuntimeError(f"buy: {r}")
            ids.extend(c["cert_id"] for c in r.json["cert"])
        return ids

    def apply(self, cert_id: str, name: str):
        r = self.server.v3("POST", f"/v3/scm/certificates/{cert_id}/apply", {
            "domain": name, "domain_method": "FILE", "key_algorithm": "EC_P256",
            "applicant_name": "Bench", "applicant_phone": "13212345678",
            "applicant_email": "bench@shop.test", "agree_privacy_protection": True})
        if r.status != 200:
            raise RuntimeError(f"apply {cert_id}: {r}")

    def issued(self) -> int:
        r = self.server.v3("GET", "/v3/scm/certificates", query=[("status", "ISSUED"), ("limit", "10")])
        if r.status != 200:
            raise RuntimeError(f"list: {r}")
        return int(r.json["total_count"])

    def unpassed(self) -> int:
        r = self.server.v3("GET", "/v3/scm/certificates", query=[("status", "UNPASSED"), ("limit", "10")])
        return int(r.json["total_count"]) if r.status == 200 else 0

    def issue(self, count: int, prefix: str, in_flight: int, timeout: float) -> tuple:
        """`count` certificates, `in_flight` applications at once; (wall seconds, per-certificate
        seconds from its apply to the issued total passing it)."""
        ids = self.buy(count)
        base = self.issued()
        t0 = time.monotonic()
        applied = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while applied < count:
                window = min(in_flight - (applied - (self.issued() - base)), count - applied)
                if window <= 0:
                    time.sleep(0.05)
                    continue
                list(pool.map(lambda i: self.apply(ids[i], f"{prefix}-{i}.shop.test"),
                              range(applied, applied + window)))
                applied += window
        deadline = t0 + timeout
        while self.issued() - base < count:
            if time.monotonic() > deadline or self.unpassed():
                raise RuntimeError(f"{self.issued() - base} of {count} issued after "
                                   f"{time.monotonic() - t0:.0f} s\n{self.server.logs()[-4000:]}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def stop(self):
        self.server.close()


def openscm_side(args, work: Path, named: Named, pebble: Pebble, peer: dict):  # noqa: ARG001
    """The same N certificates (one name each, EC P-256 keys like lego's default) issued by OpenSCM
    through the same Pebble, all N applications in flight at once (through the API, as the SDK
    sends them), http-01 answered by OpenSCM's own listener; from the first application to the
    last certificate issued. Then, with `--rss-certificates M`, M more certificates issued
    (`--rss-in-flight` at a time) and the server's resident set with N + M ACME-issued certificates under management."""
    orders_before = len(pebble.orders_created())
    ours = OpenSCM(work, pebble)
    try:
        pid = ours.server.proc.pid
        cpu0 = cpu_seconds(pid)
        wall = ours.issue(args.certificates, "bench-openscm", args.certificates, args.timeout * 10)
        cpu = cpu_seconds(pid) - cpu0
        orders = len(pebble.orders_created()) - orders_before
        if orders != args.certificates:
            raise RuntimeError(f"Pebble saw {orders} orders from OpenSCM, not {args.certificates}")
        out = {"wall": wall, "rate": args.certificates / wall,
               "cpu": cpu / args.certificates,
               "rss_mib": proc_status_kib(pid, "VmRSS") / 1024,
               "hwm_mib": proc_status_kib(pid, "VmHWM") / 1024}
        print(f"  OpenSCM, {args.certificates} applications in flight   {out['rate']:>7.2f} /s   "
              f"wall {out['wall']:.1f} s   {out['rate'] / peer['rate']:.2f}x lego")
        print(f"        CPU per certificate: OpenSCM {out['cpu'] * 1000:.0f} ms; server RSS "
              f"{out['rss_mib']:.0f} MiB (peak {out['hwm_mib']:.0f} MiB)", flush=True)
        return out
    finally:
        ours.stop()


class AlwaysValidPebble(Pebble):
    """Pebble with PEBBLE_VA_ALWAYS_VALID=1: every ACME step but the CA's own validation."""

    def env(self):
        env = super().env()
        env["PEBBLE_VA_ALWAYS_VALID"] = "1"
        return env


def rss_side(args, work: Path, named: Named) -> dict:
    """The resident set of an OpenSCM server with M ACME-issued certificates under management.

    Debian's Pebble 2.4.0 stops validating for good after a few thousand real http-01
    validations in one run (seen twice here, at 2,806 and 4,120 certificates: its validation
    task logs "Attempting to validate" and never connects; new orders still answer), so the M
    certificates are ordered from a Pebble that skips its own validation (PEBBLE_VA_ALWAYS_VALID):
    accounts, orders, authorizations, challenges answered, finalize and download are all real."""
    pebble = AlwaysValidPebble(work / "pebble-rss", listener_ca=ListenerCA(work / "ca-rss"),
                               dns_server=named.addr, http_port=free_port(), nonce_reject=0)
    pebble.start()
    ours = OpenSCM(work / "rss", pebble)
    try:
        pid = ours.server.proc.pid
        t0 = time.monotonic()
        ours.issue(args.rss_certificates, "rss", args.rss_in_flight,
                   max(600, args.rss_certificates))
        wall = time.monotonic() - t0
        total = ours.issued()
        # Steady state: what the server holds with the certificates under management (the
        # renewal and drift sweeps run), after a few seconds of quiet.
        time.sleep(5)
        return {"rss_wall": wall, "rss_total": total,
                "rss_after_mib": proc_status_kib(pid, "VmRSS") / 1024,
                "hwm_after_mib": proc_status_kib(pid, "VmHWM") / 1024}
    finally:
        ours.stop()
        pebble.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certificates", type=int, default=100, help="N certificates (default 100)")
    parser.add_argument("--parallel", type=int, default=1,
                        help="K lego runs at once (default 1: lego's own listener; K > 1: a shared webroot)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one lego run may take")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--rss-in-flight", type=int, default=20,
                        help="applications in flight while issuing the M (default 20: Pebble 2.4.0 deadlocked at 100)")
    parser.add_argument("--rss-certificates", type=int, default=0,
                        help="then M more certificates through OpenSCM, and its RSS with N + M (default 0)")
    args = parser.parse_args()
    if args.certificates < 1 or args.parallel < 1:
        parser.error("--certificates and --parallel must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="openscm-bench-acme-"))
    print(f"OpenSCM ACME benchmark: certificates issued per second through Pebble 2.4.0 (real "
          f"http-01, PEBBLE_VA_NOSLEEP=1), names in BIND, one order and one name per certificate; "
          f"machine: {machine()}", flush=True)
    named = pebble = None
    try:
        named = Named(work / "named")
        named.start()
        pebble = Pebble(work / "pebble", listener_ca=ListenerCA(work / "ca"), dns_server=named.addr,
                        http_port=free_port(), nonce_reject=0)
        pebble.start()
        print(f"  setup: named ready in {named.start_seconds:.2f} s, Pebble in "
              f"{pebble.start_seconds:.2f} s; httpPort {pebble.http_port}", flush=True)

        how = ("one at a time, lego's own http-01 listener" if args.parallel == 1 else
               f"up to {args.parallel} at once after the first, one shared webroot")
        peer = lego_side(args, work, pebble)
        print(f"  peer: lego, {args.certificates} runs ({how})   {peer['rate']:>7.2f} /s   "
              f"wall {peer['wall']:.1f} s   per run min {peer['min']:.2f} s, p50 {peer['p50']:.2f} s, "
              f"max {peer['max']:.2f} s")
        print(f"        CPU per certificate: lego {peer['lego_cpu'] * 1000:.0f} ms, Pebble "
              f"{peer['pebble_cpu'] * 1000:.0f} ms; largest lego run {peer['lego_rss_mib']:.0f} MiB RSS")

        ours = openscm_side(args, work, named, pebble, peer)
        if args.rss_certificates:
            ours.update(rss_side(args, work, named))
            print(f"  OpenSCM RSS with {ours['rss_total']} ACME-issued certificates under management: "
                  f"{ours['rss_after_mib']:.0f} MiB (peak {ours['hwm_after_mib']:.0f} MiB; "
                  f"{args.rss_certificates} issued in {ours['rss_wall']:.0f} s, "
                  f"{args.rss_certificates / ours['rss_wall']:.1f} /s at {args.rss_in_flight} in flight, from a "
                  f"Pebble that skips its own validation: see rss_side())")
    except RuntimeError as exc:
        sys.exit(str(exc))
    finally:
        for component in (pebble, named):
            if component is not None:
                component.stop()
        shutil.rmtree(os.environ["HOME"], ignore_errors=True)
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
