"""Self-checks of the DNS harness of domain validation, with no openscm server: the
`challtestsrv` component answers what its methods set, as `dig` sees it."""

import secrets
import subprocess

from e2e_helpers import require_tool


def dig(server, rtype: str, name: str) -> list:
    """The answers `dig +short` prints for `rtype` at `name`, asking `server` (a ChallTestSrv)."""
    result = subprocess.run(
        [require_tool("dig"), "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p",
         str(server.dns_port), rtype, name],
        capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, f"dig failed: {result.stdout}{result.stderr}\n{server.output()}"
    return sorted(line.strip().strip('"') for line in result.stdout.splitlines() if line.strip())


def test_txt_records_are_set_and_cleared(challtestsrv):
    # A name of this test's own: the server is shared by the whole run.
    name = f"_dnsauth.{secrets.token_hex(4)}.example.com"
    assert dig(challtestsrv, "TXT", name) == []
    challtestsrv.set_txt(name, "first-value")
    assert dig(challtestsrv, "TXT", name) == ["first-value"]
    challtestsrv.set_txt(name, "second-value")
    assert dig(challtestsrv, "TXT", name) == ["first-value", "second-value"]
    challtestsrv.clear_txt(name)
    assert dig(challtestsrv, "TXT", name) == []


def test_every_name_resolves_to_loopback_only(challtestsrv):
    assert challtestsrv.dns_addr == f"127.0.0.1:{challtestsrv.dns_port}"
    assert dig(challtestsrv, "A", "www.shop.test") == ["127.0.0.1"]
    assert dig(challtestsrv, "A", "anything.example.com") == ["127.0.0.1"]
    assert dig(challtestsrv, "AAAA", "www.shop.test") == []
