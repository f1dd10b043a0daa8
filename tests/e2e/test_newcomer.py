"""The newcomer test (issue 20, "How it must be shown"): a clone of the repository, the README's
install and quickstart steps followed as written, each outcome checked.

What it does:

1. `git clone` of the committed HEAD of the repository this file is in (uncommitted changes are
   not seen: commit a README change before running this test), into the home directory of a
   newcomer, `/home/you/openscm`. The steps read README.md *of the clone*.
2. The steps run as that newcomer, a user `you` (uid 4242 or the next one free) who is not root
   and may use sudo, since the README has OpenSCM "running as you": a step that needs root but
   has no sudo fails here as it would for a newcomer (running everything as root would hide
   that; a sudo the README adds where none is needed is not caught, though). They run in a
   private mount, network and PID namespace (`unshare --mount --net --pid --fork --mount-proc`;
   the test needs root for that and fails without it), entered with `nsenter` for each step, so
   the machine the test runs on is left as it was: inside the namespace, /home, /etc/nginx,
   /etc/sudoers.d, /etc/passwd, /etc/group and /etc/shadow are bind mounts of copies in the
   test's temporary directory (the copies of /etc/nginx and /etc/sudoers.d start as the
   machine's; the user database gets the newcomer); /run (nginx's pid file, sudo's state),
   /var/log/nginx and /var/lib/nginx are fresh tmpfs mounts; the loopback interface is the
   namespace's own, so ports 443 and 8080 are free and private. nginx is Debian's, with its
   default site (port 80); sudo is Debian's real sudo. The built binary and the e2e venv are
   bind-mounted where the newcomer may run them (and the venv's base interpreter, when it lives
   where only root may go: `Namespace.reach`). Killing the namespace's init at the end kills
   every process the steps started (the servers, nginx), and the test checks that none is left.
3. The steps are the fenced blocks of the README, in order, found by the README's own text: the
   `sh` block after "**Run the server**" (above the first `##` heading), then every block of the
   `## Quickstart` section. A block is followed by what it is:
   - `sh`: run by bash as the newcomer in the clone, one logical line (backslash continuations
     joined) at a time, each line's exit status checked, as pasted into a terminal. A block whose
     one line runs the server (`cargo run --release -p openscm -- server ...`, or the installed
     `openscm server ...`) starts it in the
     background, as in a second terminal, and waits for "listening on" (30 s).
   - a block with no language right after a start: the output the README shows. Each of its lines
     but "..." must appear, in order, as a whole line of that start's output.
   - `nginx`: its first line `# /absolute/path ...` names its file; written there as root (the
     newcomer uses sudo and an editor for that).
   - `toml`: its first line `# name` names its file; written by the newcomer in the clone.
   - `python`: run by the newcomer in the clone with the venv's interpreter; when its first line
     is `# NAME.py` it is saved as that file first and run as `python NAME.py`, and a later `sh`
     block of one line `[VAR=value ...] python3 NAME.py` runs it again (the README's HTTPS
     round: after a restart with `--tls builtin`, with `REQUESTS_CA_BUNDLE`; the endpoint in
     credentials.json must then be https), each run checked like the first.
   A block in another language, a file block whose first line names no file, a second server
   started while one runs without the README saying to stop it, or a missing section or block
   fails the test, naming what was missing.
4. The only changes made to what the README says, each where the README asks for it:
   - `cargo run --release -p openscm --` becomes the binary the test command built ($OPENSCM_BIN,
     bind-mounted where the newcomer can run it), and `cargo install --locked --path
     bins/openscm` installs that binary where cargo would (`~/.cargo/bin/openscm`, first on the
     newcomer's PATH, as rustup's setup makes it): nothing is compiled twice;
   - `<domain_id from credentials.json>` in a `toml` block becomes the domain_id of the store's
     credentials.json (the README tells the newcomer to paste it); any other `<...>` fails;
   - `pip install huaweicloudsdkscm==X huaweicloudsdkcore==Y` (in the prose above the python
     block) is a check that the interpreter the python block runs with has exactly those versions
     (the e2e venv, made from requirements.txt; it also has `requests`, which the block imports);
   - "Stop the server (Ctrl-C)" is SIGINT to the server, which must exit within 15 s;
   - `python3` in the activated venv (`. .venv/bin/activate`, in the prose) is the e2e venv's
     interpreter;
   - the newcomer's sudo (a NOPASSWD rule for everything, as for a member of group sudo with no
     terminal to type a password in) is withdrawn once the README's setup is done, so a push can
     only use the rule the README writes.
5. The outcomes checked: the first start's lines as shown in the README (absolute paths under
   /home/you/openscm); credentials.json; before the restart, `nginx -t` passes, nginx serves
   the placeholder certificate on 127.0.0.1:443 and answers `GET /` with 200 (the block's `index`),
   `visudo -c` accepts every sudoers file and the README's rule alone lets the newcomer run the
   target's `test_command` and `reload_command` without a password; the restart with the config
   names the same store and bootstraps nothing; the python block exits 0, prints ISSUED and the
   certificate and chain, never a private key, `{'message': 'success'}` for the push and a push
   history naming the target's service and region; the key file has mode 0600; and a TLS client
   at the target's `verify` address with the certificate's name as SNI gets the printed leaf,
   whose chain verifies against `openscm-data/ca-root.pem`: the push reached nginx.

The clone is at /home/you/openscm because `cargo run` runs in the clone: that is where
./openscm-data is, and what the paths of the README's sample output show.

It takes about 3 s (the steps about 2 s; 5 s with run.sh's own set-up).
"""

import ast
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509

from e2e_helpers import REPO_ROOT, dns_sans, load_certs, require_tool, tail, wait_until

README = "README.md"
NEWCOMER = "you"
HOME = "/home/you"
CLONE = f"{HOME}/openscm"
CARGO_RUN = "cargo run --release -p openscm --"
CARGO_INSTALL = "cargo install --locked --path bins/openscm"
DOMAIN_ID_PLACEHOLDER = "<domain_id from credentials.json>"
# A Debian user's PATH (no sbin), with ~/.cargo/bin first, as rustup's setup makes it.
PATH = f"{HOME}/.cargo/bin:/usr/local/bin:/usr/bin:/bin"
STEP_TIMEOUT = 60


# --------------------------------------------------------------------------- the README


@dataclass
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    section: str  # the `##` heading above it ("" above the first)
    prose: str  # the README's text between the previous block (or heading) and this one

    def where(self) -> str:
        return f"README.md line {self.line} (```{self.lang})"

    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


def fenced_blocks(text: str) -> list:
    blocks, section, prose, fence = [], "", [], None
    for number, line in enumerate(text.split("\n"), start=1):
        if fence is not None:
            if line.strip() == "```":
                blocks.append(Block(fence[0], "\n".join(fence[2]), fence[1], section,
                                    "\n".join(prose)))
                prose, fence = [], None
            else:
                fence[2].append(line)
        elif line.startswith("```"):
            fence = (line[3:].strip(), number, [])
        elif line.startswith("## "):
            section, prose = line[3:].strip(), []
        else:
            prose.append(line)
    assert fence is None, f"README.md: the block opened at line {fence[1]} is never closed"
    return blocks


def logical_lines(block: Block) -> list:
    """The block's commands as a terminal runs them: continuation lines joined, blank lines and
    comment lines left out."""
    lines, current = [], ""
    for raw in block.text.split("\n"):
        if raw.endswith("\\"):
            current += raw[:-1] + " "
            continue
        current += raw
        if current.strip() and not current.strip().startswith("#"):
            lines.append(current.strip())
        current = ""
    assert not current.strip(), f"{block.where()}: the last line continues past the block"
    return lines


@dataclass
class Step:
    kind: str  # shell, start, expect, stop, file, packages, python, rerun
    block: Block = None
    lines: list = field(default_factory=list)  # shell: the commands; expect: the lines shown
    path: str = ""  # file: where; start: the command line
    as_root: bool = False
    packages: dict = field(default_factory=dict)


def plan(readme: str) -> list:
    """The README's steps, recognised before anything runs, so that a README whose structure the
    test does not know fails at once with what it could not find."""
    blocks = fenced_blocks(readme)
    run = [b for b in blocks if b.section == "" and "**Run the server**" in b.prose]
    assert len(run) == 1, (
        "README.md: expected one fenced block under the paragraph starting \"**Run the server**\" "
        f"above the first ## heading; found {len(run)}")
    quickstart = [b for b in blocks if b.section.startswith("Quickstart")]
    assert quickstart, (
        "README.md: no fenced block in a section whose heading starts \"## Quickstart\"")

    def runs_server(line: str) -> bool:
        return line.startswith(f"{CARGO_RUN} server") or line.startswith("openscm server")

    steps, running = [], False
    for block in [run[0], *quickstart]:
        if block.lang == "sh":
            lines = logical_lines(block)
            scripts = [s.path for s in steps if s.kind == "python" and s.path]
            rerun = re.fullmatch(r"((?:[A-Z_]+=\S+\s+)*)python3 (\S+\.py)", lines[0]) \
                if len(lines) == 1 else None
            if rerun and rerun.group(2) in scripts:
                # The script a python block saved, run again (in the venv the README activates).
                steps.append(Step("rerun", block, path=lines[0]))
            elif any(CARGO_RUN in line or runs_server(line) for line in lines):
                assert len(lines) == 1 and runs_server(lines[0]), (
                    f"{block.where()}: a block that runs the server must be that one line, "
                    f"`{CARGO_RUN} server ...` or `openscm server ...`; it is:\n{block.text}")
                if running:
                    assert "Stop the server (Ctrl-C)" in block.prose, (
                        f"{block.where()} starts the server again, but the text above it does not "
                        "say \"Stop the server (Ctrl-C)\": a newcomer would get a second server "
                        f"on the same port. The text:\n{block.prose}")
                    steps.append(Step("stop"))
                steps.append(Step("start", block, path=lines[0]))
                running = True
            else:
                assert not any("cargo" in line and not line.startswith(CARGO_INSTALL)
                               for line in lines), (
                    f"{block.where()}: a cargo command the test does not know (it reuses the "
                    f"built binary only for `{CARGO_RUN}` and `{CARGO_INSTALL}`):\n{block.text}")
                steps.append(Step("shell", block, lines=lines))
        elif block.lang == "":
            assert steps and steps[-1].kind == "start", (
                f"{block.where()}: a block with no language is read as the output of the server "
                "start just before it, and none is")
            steps.append(Step("expect", block, lines=block.text.split("\n")))
        elif block.lang in ("nginx", "toml"):
            match = re.match(r"#\s*(\S+)", block.first_line())
            assert match, (
                f"{block.where()}: its first line must name its file (`# /etc/nginx/conf.d/...`, "
                f"`# openscm.toml`); it is {block.first_line()!r}")
            path = match.group(1)
            if block.lang == "nginx":
                assert path.startswith("/"), f"{block.where()}: {path!r} is not an absolute path"
            steps.append(Step("file", block, path=path, as_root=path.startswith("/")))
        elif block.lang == "python":
            pins = re.search(r"pip install\s+((?:[\w.-]+==[\w.-]+\s+)*[\w.-]+==[\w.-]+)",
                             block.prose)
            assert pins, (
                f"{block.where()}: the text above the python block names no "
                f"`pip install ...` command. The text:\n{block.prose}")
            packages = {}
            for spec in pins.group(1).split():
                name, sep, version = spec.partition("==")
                assert sep and version, f"{block.where()}: `pip install` of {spec!r}, no ==version"
                packages[name] = version
            steps.append(Step("packages", block, packages=packages))
            # A block whose first line is `# name.py` is saved as that file (to be run again).
            saved = re.fullmatch(r"#\s*(\S+\.py)\s*", block.first_line())
            steps.append(Step("python", block, path=saved.group(1) if saved else ""))
        else:
            raise AssertionError(
                f"{block.where()}: the newcomer test does not know how to follow a "
                f"```{block.lang} block; teach it (tests/e2e/test_newcomer.py)")

    kinds = [s.kind for s in steps]
    for kind, what in [("expect", "the first start's output"), ("stop", "a restart"),
                       ("python", "a python block")]:
        assert kind in kinds, f"README.md: the quickstart has no {what} (steps found: {kinds})"
    nginx_files = [s for s in steps if s.kind == "file" and s.block.lang == "nginx"]
    tomls = [s for s in steps if s.kind == "file" and s.block.lang == "toml"]
    assert len(nginx_files) == 1 and len(tomls) == 1, (
        f"README.md: expected one nginx and one toml block in the quickstart; steps found: {kinds}")
    return steps


# --------------------------------------------------------------------------- the namespace


def free_id(taken: set, start: int = 4242) -> int:
    while start in taken:
        start += 1
    return start


class Namespace:
    """A mount + network + PID namespace with the newcomer's machine: see the module docstring."""

    def __init__(self, root: Path, binary: str, venv: str):
        self.root = root
        self.tools = root / "tools"
        self.binary = self.tools / "openscm"
        self.python = self.tools / "venv" / "bin" / "python"
        self.setup_log = root / "namespace.log"
        self.children = []
        self.init_pid = None
        self.proc = None

        names = {p.pw_name for p in pwd.getpwall()}
        assert NEWCOMER not in names, f"a user {NEWCOMER!r} exists on this machine already"
        self.uid = free_id({p.pw_uid for p in pwd.getpwall()})
        self.gid = free_id({int(line.split(":")[2]) for line in
                            Path("/etc/group").read_text().splitlines() if line.count(":") >= 3})

        root.chmod(0o755)
        self.tools.mkdir()
        self.binary.touch()
        (self.tools / "venv").mkdir()
        etc = root / "etc"
        etc.mkdir()
        shutil.copytree("/etc/nginx", etc / "nginx", symlinks=True)
        shutil.copytree("/etc/sudoers.d", etc / "sudoers.d", symlinks=True)
        # the newcomer may use sudo for the README's setup (withdrawn afterwards: withdraw_sudo)
        self.setup_rule = etc / "sudoers.d" / "zz-newcomer-test"
        self.setup_rule.write_text(f"{NEWCOMER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        self.setup_rule.chmod(0o440)
        for name, line in [
            ("passwd", f"{NEWCOMER}:x:{self.uid}:{self.gid}:Newcomer:{HOME}:/bin/bash\n"),
            ("group", f"{NEWCOMER}:x:{self.gid}:\n"),
            ("shadow", f"{NEWCOMER}:*:19000:0:99999:7:::\n"),
        ]:
            copy = etc / name
            shutil.copy2(f"/etc/{name}", copy)
            st = os.stat(f"/etc/{name}")
            os.chown(copy, st.st_uid, st.st_gid)
            with copy.open("a") as out:
                out.write(line)
        self.home = root / "home" / NEWCOMER
        self.home.mkdir(parents=True)

        mounts = [
            "ip link set lo up",
            "mount -t tmpfs -o mode=0755 newcomer-run /run",
            "mount -t tmpfs -o mode=0755 newcomer-nginx-log /var/log/nginx",
            "mount -t tmpfs -o mode=0755 newcomer-nginx-lib /var/lib/nginx",
            f"mount --bind {etc / 'nginx'} /etc/nginx",
            f"mount --bind {etc / 'sudoers.d'} /etc/sudoers.d",
            *[f"mount --bind {etc / name} /etc/{name}" for name in ("passwd", "group", "shadow")],
            f"mount --bind {shlex.quote(binary)} {self.binary}",
            f"mount --bind {shlex.quote(venv)} {self.tools / 'venv'}",
            f"mount --bind {root / 'home'} /home",
            *self.reach(Path(venv).resolve() / "bin" / "python"),
        ]
        self.setup = root / "namespace.sh"
        self.setup.write_text(
            "set -euo pipefail\nexport PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
            + "\n".join(mounts)
            + f"\ntouch {root / 'ready'}\n"
            # the test holds stdin: its end (the test gone) ends the namespace
            + "read -r _ || true\n")

    def reach(self, python: Path) -> list:
        """The mounts that let the newcomer run the venv's interpreter. A venv's python is a
        symlink to its base interpreter, which may live where only root may go (pyenv's under
        /root, 0700: the python finds its libpython there by absolute path). Then, in the
        namespace only, a tmpfs (0755) covers the first directory on that path the newcomer may
        not enter, and the interpreter's installation is bind-mounted back at its own path."""
        base = python.resolve().parent.parent
        closed = next((d for d in reversed(base.parents) if not d.stat().st_mode & 0o001), None)
        if closed is None:
            return []
        assert not Path("/home").is_relative_to(closed) and not closed.is_relative_to("/home"), (
            f"the venv's interpreter {base} is in {closed}, where the newcomer's home is mounted")
        keep = self.tools / "python-base"
        keep.mkdir()
        return [f"mount --bind {shlex.quote(str(base))} {keep}",
                f"mount -t tmpfs -o mode=0755 newcomer-reach {shlex.quote(str(closed))}",
                f"mkdir -p {shlex.quote(str(base))}",
                f"mount --bind {keep} {shlex.quote(str(base))}"]

    def start(self):
        unshare = require_tool("unshare")
        with self.setup_log.open("wb") as log:
            self.proc = subprocess.Popen(
                [unshare, "--mount", "--net", "--pid", "--fork", "--mount-proc",
                 "--kill-child=SIGKILL", "bash", str(self.setup)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: (self.root / "ready").exists() or self.proc.poll() is not None, 10,
                   "the namespace's mounts", seen=lambda: tail(self.setup_log))
        assert self.proc.poll() is None, (
            f"the namespace's setup failed (rc {self.proc.returncode}): {tail(self.setup_log)}")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        self.init_pid = int(children.read_text().split()[0])
        self.pid_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")

    def enter(self) -> list:
        return ["nsenter", f"--target={self.init_pid}", "--mount", "--net", "--pid", "--"]

    def as_newcomer(self, script: str) -> list:
        env = [f"HOME={HOME}", f"USER={NEWCOMER}", f"LOGNAME={NEWCOMER}", "SHELL=/bin/bash",
               f"PATH={PATH}", "LANG=C.UTF-8"]
        return [*self.enter(), "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                "--init-groups", "--", "env", "-i", *env, "bash", "--noprofile", "--norc", "-c",
                f"cd {CLONE} || exit 1\n{script}"]

    def run(self, argv: list, *, input: str = None, timeout: float = STEP_TIMEOUT):
        """Runs argv (from `enter()` or `as_newcomer()`), output to a file (a daemon that keeps a
        pipe open cannot make this wait); returns (exit status, output)."""
        out = tempfile.TemporaryFile(dir=self.root)
        try:
            proc = subprocess.run(argv, input=input.encode() if input is not None else None,
                                  stdin=subprocess.DEVNULL if input is None else None,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            out.seek(0)
            raise AssertionError(f"still running after {timeout} s: {argv[-1]}\n"
                                 f"output so far:\n{out.read().decode(errors='replace')}")
        out.seek(0)
        return proc.returncode, out.read().decode(errors="replace")

    def root_run(self, *argv, input: str = None):
        return self.run([*self.enter(), *argv], input=input)

    def popen(self, argv: list, log: Path):
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.children.append(proc)
        return proc

    def withdraw_sudo(self):
        self.setup_rule.unlink()

    def in_namespace(self) -> list:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == self.pid_ns:
                        found.append(entry)
                except OSError:
                    pass
        return found

    def close(self):
        if self.init_pid is not None:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if self.init_pid is not None:
            wait_until(lambda: not self.in_namespace(), 10,
                       "every process of the namespace (servers, nginx) to be gone",
                       seen=lambda: [Path(f"/proc/{p}/cmdline").read_bytes() for p in
                                     self.in_namespace()])


# --------------------------------------------------------------------------- the newcomer


class Newcomer:
    """Follows the steps; keeps what the checks need."""

    def __init__(self, ns: Namespace, steps: list):
        self.ns = ns
        self.steps = steps
        self.server = None  # (Popen of nsenter, log path, the command line)
        self.starts = []  # the log path of each start
        self.python_output = None
        self.toml = None
        self.last_s_client = ""

    # -- the server
    def server_log(self) -> str:
        return self.server[1].read_text(errors="replace") if self.server else ""

    def server_pid(self) -> int:
        proc = self.server[0]
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        return int(children.read_text().split()[0])

    def start(self, step: Step):
        command = step.path.replace(CARGO_RUN, str(self.ns.binary))
        log = self.ns.root / f"server-{len(self.starts) + 1}.log"
        proc = self.ns.popen(self.ns.as_newcomer(f"exec {command}"), log)
        self.server = (proc, log, step.path)
        self.starts.append(log)
        wait_until(lambda: "listening on" in self.server_log() or proc.poll() is not None, 30,
                   f"`{step.path}` ({step.block.where()}) to say it is listening",
                   seen=lambda: self.server_log()[-4000:])
        assert proc.poll() is None, (
            f"`{step.path}` ({step.block.where()}) exited with {proc.returncode}:\n"
            f"{self.server_log()}")

    def stop(self):
        proc, log, command = self.server
        os.kill(self.server_pid(), signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`{command}` still runs 15 s after SIGINT (Ctrl-C):\n"
                                 f"{tail(log)}")
        assert proc.returncode == 0, (
            f"`{command}` exited with {proc.returncode} after SIGINT (Ctrl-C):\n{tail(log)}")
        self.server = None

    def expect(self, step: Step):
        wanted = [line for line in step.lines if line.strip() != "..."]

        def matched():
            have = self.server_log().split("\n")
            i = 0
            for line in have:
                if i < len(wanted) and line == wanted[i]:
                    i += 1
            return i

        wait_until(lambda: matched() == len(wanted), 5,
                   f"the output {step.block.where()} shows",
                   seen=lambda: f"no line {wanted[matched()]!r} (in order) in:\n"
                                f"{self.server_log()}")

    # -- the other blocks
    def shell(self, step: Step):
        parts = []
        # `cargo install` puts the binary the test command built where it would put its own.
        installed = (f"install -D -m 0755 {shlex.quote(str(self.ns.binary))} "
                     '"$HOME/.cargo/bin/openscm"')
        for line in step.lines:
            parts.append(line.replace(CARGO_INSTALL, installed, 1)
                         if line.startswith(CARGO_INSTALL) else line)
            said = shlex.quote(f"newcomer test: this line failed: {line}")
            parts.append(f"rc=$?; if [ $rc -ne 0 ]; then echo; echo {said} \"(exit $rc)\"; "
                         "exit $rc; fi")
        for line in step.lines:
            bad = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True)
            assert bad.returncode == 0, (
                f"{step.block.where()}: {line!r} is not a complete shell command on its own "
                f"line: {bad.stderr}")
        rc, out = self.ns.run(self.ns.as_newcomer("\n".join(parts)))
        assert rc == 0, (f"{step.block.where()} failed as pasted by the newcomer:\n"
                         f"{step.block.text}\n---- output ----\n{out}")

    def write_file(self, step: Step):
        text = step.block.text + "\n"
        if step.block.lang == "toml":
            creds = self.credentials()
            text = text.replace(DOMAIN_ID_PLACEHOLDER, creds["domain_id"])
            left = re.findall(r"<[^<>\n]*>", text)
            assert not left, (f"{step.block.where()}: placeholders the test does not know how to "
                              f"fill: {left}")
            self.toml = tomllib.loads(text)
        write = ["sh", "-c", 'cat > "$1"', "sh", step.path]
        if step.as_root:
            rc, out = self.ns.root_run(*write, input=text)
        else:
            rc, out = self.ns.run(self.ns.as_newcomer(shlex.join(write)), input=text)
        assert rc == 0, f"writing {step.path} ({step.block.where()}) failed: {out}"

    def packages(self, step: Step):
        code = ("import importlib.metadata as m, sys\n"
                "for name in sys.argv[1:]:\n"
                "    try: print(name, m.version(name))\n"
                "    except m.PackageNotFoundError: print(name, 'missing')\n")
        rc, out = self.ns.run(self.ns.as_newcomer(shlex.join(
            [str(self.ns.python), "-c", code, *step.packages])))
        assert rc == 0, f"asking the venv's versions failed: {out}"
        have = dict(line.split(" ", 1) for line in out.strip().split("\n"))
        assert have == step.packages, (
            f"the README says `pip install` {step.packages} ({step.block.where()}); the venv "
            f"the python block runs with has {have}: keep tests/e2e/requirements.txt and the "
            "README's versions the same")

    def python(self, step: Step):
        if step.path:
            # Saved as the README says, then run as `python3 NAME` in the activated venv.
            write = ["sh", "-c", 'cat > "$1"', "sh", step.path]
            rc, out = self.ns.run(self.ns.as_newcomer(shlex.join(write)),
                                  input=step.block.text + "\n")
            assert rc == 0, f"saving {step.path} ({step.block.where()}) failed: {out}"
            rc, out = self.ns.run(self.ns.as_newcomer(f"exec {self.ns.python} {step.path}"),
                                  timeout=90)
        else:
            rc, out = self.ns.run(self.ns.as_newcomer(f"exec {self.ns.python} -"),
                                  input=step.block.text + "\n", timeout=90)
        self.python_output = out
        assert rc == 0, f"the python block ({step.block.where()}) exited with {rc}:\n{out}"

    def rerun(self, step: Step):
        """`[VAR=value ...] python3 NAME.py`: the saved script again, with the venv's python (what
        `python3` is in the venv the README activates)."""
        line = re.sub(r"(^|\s)python3 ", rf"\1exec {self.ns.python} ", step.path, count=1)
        if not line.startswith("exec "):
            line = re.sub(r"^((?:[A-Z_]+=\S+\s+)*)exec ", r"exec env \1", line)
        rc, out = self.ns.run(self.ns.as_newcomer(line), timeout=90)
        self.python_output = out
        assert rc == 0, f"`{step.path}` ({step.block.where()}) exited with {rc}:\n{out}"

    def credentials(self) -> dict:
        import json
        path = self.ns.home / "openscm" / "openscm-data" / "credentials.json"
        assert path.is_file(), f"no {CLONE}/openscm-data/credentials.json after the first start"
        return json.loads(path.read_text())

    # -- the checks between steps
    def check_first_start(self):
        creds = self.credentials()
        for key in ("access_key", "secret_key", "domain_id", "project_id", "endpoint"):
            assert creds.get(key), f"credentials.json has no {key}: {sorted(creds)}"

    def check_setup(self):
        """Before the restart: nginx runs with the README's server block and the placeholder, and
        the README's sudo rule is what lets the newcomer test and reload it."""
        target = self.toml_target()
        rc, out = self.ns.root_run("nginx", "-t")
        assert rc == 0, f"`nginx -t` fails after the README's nginx steps:\n{out}"
        rc, out = self.ns.root_run("cat", target["cert_path"])
        assert rc == 0, f"no placeholder at the target's cert_path {target['cert_path']}: {out}"
        placeholder = load_certs(out)[0]
        served = wait_until(lambda: self.served(self.server_name), 10,
                            f"nginx to serve {self.server_name} on {self.address}",
                            seen=lambda: self.last_s_client[-2000:])
        assert served[0] == placeholder, (
            f"nginx serves {served[0].subject} on {self.address}, not the placeholder at "
            f"{target['cert_path']} ({placeholder.subject})")
        request = (f"GET / HTTP/1.1\\r\\nHost: {self.server_name}\\r\\n"
                   "Connection: close\\r\\n\\r\\n")
        rc, out = self.ns.root_run(
            "sh", "-c", f"printf '{request}' | openssl s_client -connect {self.address} "
            f"-servername {self.server_name} -quiet 2>/dev/null")
        assert out.startswith("HTTP/1.1 200"), (
            f"nginx's answer to GET / for {self.server_name} on {self.address} is not 200 (the "
            f"server block's `index`?):\n{out[:2000]}")
        rc, out = self.ns.root_run("visudo", "-c")
        assert rc == 0, f"`visudo -c` refuses the sudoers files:\n{out}"
        self.ns.withdraw_sudo()
        for name in ("test_command", "reload_command"):
            command = target[name]
            assert command[:2] == ["sudo", "-n"], f"the target's {name} is not `sudo -n ...`"
            listed = shlex.join(["sudo", "-n", "-l", *command[2:]])
            rc, out = self.ns.run(self.ns.as_newcomer(listed))
            if rc != 0:
                _, rules = self.ns.run(self.ns.as_newcomer("sudo -n -l"))
                raise AssertionError(
                    f"the README's sudo rule does not let {NEWCOMER} run the target's {name} "
                    f"{command} without a password:\n{out}\n---- sudo -n -l ----\n{rules}")

    @property
    def server_name(self) -> str:
        """The nginx block's (first) server_name."""
        block = next(s.block for s in self.steps if s.kind == "file" and s.block.lang == "nginx")
        names = re.search(r"^\s*server_name\s+([^\s;]+)", block.text, re.M)
        assert names, f"{block.where()}: no server_name"
        return names.group(1)

    @property
    def address(self) -> str:
        """Where nginx serves: the push target's `verify` address."""
        return self.toml_target()["verify"]["address"]

    def toml_target(self) -> dict:
        targets = self.toml.get("push_targets", [])
        assert len(targets) == 1, f"openscm.toml: expected one push target, found {targets}"
        return targets[0]

    def check_restart(self, store_line: str):
        log = self.server_log()
        assert store_line in log.split("\n"), (
            f"the restart does not name the store of the first start ({store_line!r}):\n{log}")
        assert "bootstrapped" not in log, f"the restart bootstrapped a new store:\n{log}"

    def served(self, sni: str, cafile: str = None) -> list:
        """The chain served at the target's `verify` address for `sni` (inside the namespace), or
        [] when nothing is served there."""
        argv = ["openssl", "s_client", "-connect", self.address, "-servername", sni, "-showcerts"]
        if cafile:
            argv += ["-CAfile", cafile, "-verify_return_error", "-verify_hostname", sni]
        rc, out = self.ns.root_run(*argv, input="")
        self.last_s_client = out
        if rc != 0 or "-----BEGIN CERTIFICATE-----" not in out:
            return []
        return load_certs("".join(re.findall(
            r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", out, re.S)))

    def check_python(self, block: Block):
        out = self.python_output
        assert "PRIVATE KEY" not in out, f"the python block printed a private key:\n{out}"
        lines = out.split("\n")
        assert "ISSUED" in lines, f"the python block did not print ISSUED:\n{out}"
        printed = load_certs("".join(re.findall(
            r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", out, re.S)))
        assert len(printed) >= 2, (
            f"the python block did not print a certificate and its chain:\n{out}")
        domain = re.search(r'domain="([^"]+)"', block.text)
        assert domain, f"{block.where()}: no domain=\"...\" in the python block"
        domain = domain.group(1)
        leaf = printed[0]
        assert domain in dns_sans(leaf), f"the printed leaf's names: {dns_sans(leaf)}"
        answers = [ast.literal_eval(line) for line in lines if line.startswith("{")]
        assert len(answers) == 2, f"expected the push answer and the push history:\n{out}"
        push, history = answers
        assert push == {"message": "success"}, f"the push answered {push}"
        target = self.toml_target()
        entries = history.get("push_history_list")
        assert entries and all(
            (e.get("push_service"), e.get("push_remote_project")) == (target["service"],
                                                                       target["region"])
            for e in entries), f"the push history: {history}"
        return domain, leaf, printed

    def check_pushed(self, domain: str, leaf: x509.Certificate):
        target = self.toml_target()
        rc, out = self.ns.root_run("stat", "-c", "%a %U", target["key_path"])
        assert (rc, out.strip()) == (0, f"600 {NEWCOMER}"), (
            f"the pushed key {target['key_path']}: mode and owner {out.strip()} (rc {rc})")
        ca_root = f"{CLONE}/openscm-data/ca-root.pem"

        def serves_leaf():
            served = self.served(domain, cafile=ca_root)
            return (served and served[0] == leaf
                    and "Verify return code: 0 (ok)" in self.last_s_client)

        # the push answered once its own TLS check saw the leaf: the deadline is for a slow reload
        wait_until(serves_leaf, 10,
                   f"nginx at {self.address} (SNI {domain}) to serve the printed leaf, verified "
                   f"against {ca_root}", seen=lambda: self.last_s_client[-3000:])

    # -- all of it
    def follow(self):
        store_line = None
        restarted = False
        python_block = None
        began = time.monotonic()
        for step in self.steps:
            print(f"{time.monotonic() - began:5.1f} s  {step.kind:8s} "
                  f"{step.block.where() if step.block else ''} {step.path}")
            if step.kind == "start":
                restart = bool(self.starts)
                self.start(step)
                if restart:
                    self.check_restart(store_line)
            elif step.kind == "expect":
                self.expect(step)
                self.check_first_start()
                stores = [line for line in step.lines if line.startswith("OpenSCM: store:")]
                assert len(stores) == 1, (
                    f"{step.block.where()}: the output shown has no one \"OpenSCM: store:\" line")
                store_line = stores[0]
            elif step.kind == "stop":
                if not restarted:
                    self.check_setup()
                restarted = True
                self.stop()
            elif step.kind == "shell":
                self.shell(step)
            elif step.kind == "file":
                self.write_file(step)
            elif step.kind == "packages":
                self.packages(step)
            elif step.kind in ("python", "rerun"):
                if step.kind == "python":
                    python_block = step.block
                    self.python(step)
                else:
                    self.rerun(step)
                    endpoint = self.credentials()["endpoint"]
                    if "REQUESTS_CA_BUNDLE" in step.path:
                        assert endpoint.startswith("https://"), (
                            f"`{step.path}` ({step.block.where()}) trusts a CA for HTTPS, but "
                            f"the endpoint in credentials.json is {endpoint}")
                print(self.python_output)
                domain, leaf, _ = self.check_python(python_block)
                self.check_pushed(domain, leaf)
                print("\n".join(line for line in self.last_s_client.split("\n")
                                if line.startswith(("subject=", "issuer=", "Verify return code"))))
        print(f"{time.monotonic() - began:5.1f} s  done")

    def diagnostics(self) -> str:
        parts = [f"---- {log.name} ----\n{tail(log)}" for log in self.starts]
        if self.python_output is not None:
            parts.append(f"---- the python block's output ----\n{self.python_output}")
        if self.ns.init_pid is not None:
            rc, out = self.ns.root_run("sh", "-c", "cat /var/log/nginx/error.log 2>&1")
            parts.append(f"---- nginx's error.log ----\n{out[-4000:]}")
        parts.append(f"---- the namespace ----\n{tail(self.ns.setup_log)}")
        return "\n".join(parts)


# --------------------------------------------------------------------------- the test


def git(*args) -> str:
    # safe.directory: the repository may belong to another user than the one running the suite
    proc = subprocess.run([require_tool("git"), "-c", "safe.directory=*", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: rc {proc.returncode}: {proc.stderr}"
    return proc.stdout.strip()


def clone(dest: Path) -> Path:
    head = git("-C", str(REPO_ROOT), "rev-parse", "HEAD")
    git("clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(dest))
    git("-C", str(dest), "checkout", "--quiet", "--detach", head)
    return dest


def test_newcomer_follows_the_readme(openscm_bin):
    if os.geteuid() != 0:
        pytest.fail("the newcomer test needs root: it runs the README's steps (sudo, nginx on "
                    "port 443) in a private mount, network and PID namespace", pytrace=False)
    assert sys.prefix != sys.base_prefix, (
        f"the suite runs with {sys.executable}, not in a venv: run it through tests/e2e/run.sh "
        "(the README's python block runs with the e2e venv)")
    for tool in ("nginx", "openssl", "sudo", "visudo", "unshare", "nsenter", "setpriv", "ip"):
        require_tool(tool)
    root = Path(tempfile.mkdtemp(prefix="openscm-newcomer-", dir="/tmp"))
    try:
        ns = Namespace(root, openscm_bin, sys.prefix)
        checkout = clone(ns.home / "openscm")
        steps = plan((checkout / README).read_text())
        subprocess.run(["chown", "-R", f"{ns.uid}:{ns.gid}", str(ns.home)], check=True)
        ns.home.chmod(0o700)
        ns.start()
        newcomer = Newcomer(ns, steps)
        try:
            newcomer.follow()
        except Exception:
            print(newcomer.diagnostics())
            raise
        finally:
            ns.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
