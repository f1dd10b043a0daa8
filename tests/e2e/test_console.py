"""The web console (/console), once per storage backend, driven in a real headless Chromium
(Debian chromium + chromium-driver, through Selenium): sign in, search, open a certificate, see
its push history (pushed first to a real nginx), the expiry timeline and its links, download an
export (the file's PEM checked), sign out. And with plain `requests`: no session cookie, a bad
CSRF token, bad or revoked credentials, the security headers, sign-in throttling.

The browser run on SQLite takes the screenshots of docs/console.md; it writes them to docs/screenshots/
with OPENSCM_UPDATE_SCREENSHOTS=1 (elsewhere, to a temporary directory: a test run leaves the
tree as it was).
"""

import datetime
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from huaweicloudsdkscm.v3 import (
    ApplyCertificateRequest,
    ApplyCertificateRequestBody,
    ImportCertificateRequest,
    ImportCertificateRequestBody,
    PurchaseCertificateRequestBody,
    ShowCertificateRequest,
    SubscribeCertificateRequest,
)

from conftest import Backend, ServerFactory
from e2e_helpers import console_session, require_tool

REPO = Path(__file__).resolve().parents[2]
SHOTS = (REPO / "docs" / "screenshots" if os.environ.get("OPENSCM_UPDATE_SCREENSHOTS") == "1"
         else Path(tempfile.mkdtemp(prefix="openscm-screenshots-")))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
APPLICANT = dict(applicant_name="Tom Smith", applicant_phone="13212345678",
                 applicant_email="tom@example.com")
NAMES = ["shop.console.test", "api.console.test", "mail.console.test", "vpn.console.test"]
VALIDITY_DAYS = 30


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(servers, nginx_target_toml):
    # Leaves valid for 30 days: they land inside the timeline's 26 weeks.
    return servers.bootstrap_then_configure(
        "console", lambda creds: f"leaf_validity_days = {VALIDITY_DAYS}\n" + nginx_target_toml(creds))


@pytest.fixture(scope="module")
def creds(server):
    return server.credentials


def self_signed(cn: str, days: tuple[int, int]) -> tuple[str, str]:
    """A self-signed EC leaf for `cn`, valid from `days[0]` to `days[1]` days from now: its PEM
    and its key's."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days[0]))
            .not_valid_after(now + datetime.timedelta(days=days[1]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


@pytest.fixture(scope="module")
def seeded(server, creds):
    """Eight certificates: four issued (one with extra SANs, one tagged, one pushed to nginx),
    two only paid, and two imported: one expired a day ago, one valid for 400 days (past the
    first year of the timeline)."""
    client = server.sdk_client(creds)
    bought = client.subscribe_certificate(SubscribeCertificateRequest(body=PurchaseCertificateRequestBody(
        cert_brand="GLOBALSIGN", cert_type="DV_SSL_CERT", domain_type="MULTI_DOMAIN",
        effective_time=1, domain_numbers=3, order_number=6, agree_privacy_protection=True,
    )))
    ids = [c.cert_id for c in bought.cert]
    for cert_id, name in zip(ids, NAMES):
        sans = f"www.{name};alt.{name}" if name.startswith("shop") else None
        client.apply_certificate(ApplyCertificateRequest(
            certificate_id=cert_id,
            body=ApplyCertificateRequestBody(
                domain=name, sans=sans, **APPLICANT, agree_privacy_protection=True,
                domain_method="DNS", key_algorithm="EC_P256",
            ),
        ))
    shop = ids[0]
    resp = server.v3("POST", f"/v3/scm/{shop}/tags", {"tag": {"key": "team", "value": "web-shop"}})
    assert resp.status in (200, 204), resp
    resp = server.v2("POST", f"/scm/cert/{shop}/push", {"service_type": "ELB", "remote_project": "cn-north-4"})
    assert resp.status == 200, resp
    history = server.v2("GET", f"/scm/cert/{shop}/push-history").json["push_history_list"]
    assert len(history) == 1, history
    imported = {}
    for label, days in (("old", (-60, -1)), ("long", (-1, 400))):
        cert, key = self_signed(f"{label}.console.test", days)
        resp = client.import_certificate(ImportCertificateRequest(body=ImportCertificateRequestBody(
            name=f"imported-{label}", certificate=cert, private_key=key)))
        imported[label] = resp.certificate_id
    return {"ids": ids, "shop": shop, "old": imported["old"], "long": imported["long"]}


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    require_tool(CHROMIUM)
    require_tool(CHROMEDRIVER)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--force-device-scale-factor=1", "--lang=en-US"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def shot(backend, driver, name):
    """Writes a screenshot of docs/console.md (from the SQLite run only: one set)."""
    if backend.name == "sqlite":
        SHOTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SHOTS / f"{name}.png"))


class navigating:
    """Waits for the navigation an action starts (a form sent with Enter, a link or button
    clicked): until a new document is loaded. WebDriver does not always wait for a navigation a
    keypress starts, and the old page's elements go stale. The old document is marked (a
    property of its window, which a new document does not have); while the navigation runs,
    Chromium may answer any WebDriver error, so errors only mean "not yet"."""

    MARK = "__openscm_old_page"

    def __init__(self, driver):
        self.driver = driver

    def __enter__(self):
        self.driver.execute_script(f"window.{self.MARK} = true")

    def __exit__(self, *exc):
        if exc[0] is None:
            WebDriverWait(self.driver, 15, ignored_exceptions=(WebDriverException,)).until(
                lambda d: d.execute_script(
                    f"return !window.{self.MARK} && document.readyState === 'complete'"))
        return False


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', html).group(1)


# --------------------------------------------------------------------------- the browser


def test_console_in_chromium(server, creds, seeded, browser, downloads, backend):
    d = browser
    d.get(server.url + "/console")
    assert d.current_url.endswith("/console/sign-in"), d.current_url
    # The first Tab stop is the skip link.
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert d.switch_to.active_element.text == "Skip to content"

    # Sign in with the keyboard: labels name the fields, Enter submits.
    ak = d.find_element(By.CSS_SELECTOR, "label[for=access_key] + input")
    ak.send_keys(creds["access_key"])
    sk = d.find_element(By.ID, "secret_key")
    with navigating(d):
        sk.send_keys(creds["secret_key"], Keys.ENTER)
    assert d.current_url.endswith("/console/certificates"), d.current_url
    # Chromium kept the Secure cookie on http://127.0.0.1 (a secure context), with its attributes.
    cookies = {c["name"]: c for c in d.get_cookies()}
    c = cookies["openscm_console"]
    assert c["secure"] and c["httpOnly"] and c["sameSite"] == "Strict" and c["path"] == "/console", c
    assert 8 * 3600 - 120 <= c["expiry"] - time.time() <= 8 * 3600 + 5, c
    # ... and JavaScript cannot read it.
    assert "openscm_console" not in d.execute_script("return document.cookie")

    table = d.find_element(By.ID, "inventory")
    assert "1–8 of 8 certificates" in table.find_element(By.TAG_NAME, "caption").text
    for name in NAMES:
        assert name in table.text
    assert len(table.find_elements(By.CSS_SELECTOR, "thead th[scope=col]")) == 6
    # The account by its name (the id in its tooltip), not a hex id.
    who = d.find_element(By.CSS_SELECTOR, "header .who .account")
    assert who.text == "admin" and creds["domain_id"] in who.get_attribute("title"), who.text
    assert creds["domain_id"] not in d.find_element(By.TAG_NAME, "header").text
    # What expires within 30 days, and what has expired, is tinted and says so; the rest not.
    def row_of(name):
        return d.find_element(By.XPATH, f"//table[@id='inventory']//tr[th/a[text()='{name}']]")
    expiring = d.find_elements(By.CSS_SELECTOR, "#inventory tbody tr.expiring")
    expired = d.find_elements(By.CSS_SELECTOR, "#inventory tbody tr.expired")
    assert len(expiring) == 4 and all(re.search(r"expires in (29|30) days", r.text) for r in expiring), \
        [r.text for r in expiring]
    assert len(expired) == 1 and "imported-old" in expired[0].text and "expired" in expired[0].text, \
        [r.text for r in expired]
    assert row_of("imported-long").get_attribute("class") == "", row_of("imported-long").text
    tint = d.execute_script("return getComputedStyle(arguments[0]).backgroundColor", expiring[0])
    plain = d.execute_script("return getComputedStyle(arguments[0]).backgroundColor",
                             row_of("imported-long"))
    assert tint != plain, (tint, plain)
    # Who issued each: the built-in CA, or no one OpenSCM knows.
    assert "built-in CA" in expiring[0].text and "imported" in row_of("imported-long").text
    shot(backend, d, "inventory")

    # Search (the list API's keyword), with the status filter and a sort.
    box = d.find_element(By.ID, "content")
    box.clear()
    with navigating(d):
        box.send_keys("shop", Keys.ENTER)
    rows = d.find_elements(By.CSS_SELECTOR, "#inventory tbody tr")
    assert len(rows) == 1 and "shop.console.test" in rows[0].text, [r.text for r in rows]
    d.get(server.url + "/console/certificates?status=PAID&sort_key=certExpiredTime&sort_dir=ASC")
    rows = d.find_elements(By.CSS_SELECTOR, "#inventory tbody tr")
    assert len(rows) == 2 and all("PAID" in r.text for r in rows), [r.text for r in rows]
    # The link to what expires within 30 days lists the four issued ones, not the expired one.
    d.get(server.url + "/console/certificates")
    with navigating(d):
        d.find_element(By.ID, "expiring-link").click()
    rows = d.find_elements(By.CSS_SELECTOR, "#inventory tbody tr")
    assert len(rows) == 4 and all("console.test" in r.text for r in rows), [r.text for r in rows]
    d.get(server.url + "/console/certificates?content=shop")

    # Open it: names, validity, chain, key algorithm, push history, tags.
    with navigating(d):
        d.find_element(By.CSS_SELECTOR, "#inventory tbody th a").click()
    assert d.current_url.endswith(f"/console/certificates/{seeded['shop']}"), d.current_url
    facts = d.find_element(By.CSS_SELECTOR, "dl.facts").text
    for name in ("shop.console.test", "www.shop.console.test", "alt.shop.console.test"):
        assert name in facts, facts
    assert "EC_P256" in facts and "Valid until" in facts and "ISSUED" in facts, facts
    assert re.search(r"expires in (29|30) days", d.find_element(By.ID, "valid-until").text), facts
    assert "Issued by\nthe built-in CA" in facts, facts
    chain = d.find_element(By.ID, "chain").find_element(By.XPATH, "following-sibling::div[1]").text
    assert "CN=shop.console.test" in chain and "OpenSCM" in chain, chain
    history = d.find_element(By.ID, "push-history").text
    assert "ELB" in history and "cn-north-4" in history and "success" in history and "e2e-nginx" in history, history
    assert "web-shop" in d.find_element(By.ID, "tags-table").text
    shot(backend, d, "details")

    # Export: a download of one .pem (certificate, chain, key).
    for f in downloads.iterdir():
        f.unlink()
    d.find_element(By.ID, "export-button").click()
    target = downloads / f"{seeded['shop']}.pem"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not target.exists():
        time.sleep(0.1)
    assert target.exists(), list(downloads.iterdir())
    pem = target.read_bytes()
    certs = x509.load_pem_x509_certificates(pem)
    assert len(certs) >= 2, pem
    sans = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "shop.console.test" in sans.get_values_for_type(x509.DNSName)
    key = serialization.load_pem_private_key(pem[pem.index(b"-----BEGIN PRIVATE KEY-----"):], password=None)
    assert key.public_key().public_numbers() == certs[0].public_key().public_numbers()

    # The expiry timeline: at least 13 months, and up to the latest expiry held: the imported
    # 400-day certificate is in week 57, so 58 weeks. Every issued certificate expires in ~30
    # days (week 4); the bar links to exactly those.
    with navigating(d):
        d.find_element(By.LINK_TEXT, "Expiry timeline").click()
    bars = d.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.bar")
    assert len(bars) == 58
    assert "5 certificates expire in the next 58 weeks" in d.page_source
    links = d.find_elements(By.CSS_SELECTOR, "#timeline-table a")
    counts = [int(a.text) for a in links]
    assert sum(counts) == 5 and counts.index(4) == VALIDITY_DAYS // 7 and counts[-1] == 1, counts
    shot(backend, d, "timeline")
    # The SVG bar is a link too: follow the tallest.
    bar_links = d.find_elements(By.CSS_SELECTOR, "#timeline-chart a")
    assert len(bar_links) == 58
    with navigating(d):
        bar_links[counts.index(4)].click()
    assert "expires_from=" in d.current_url, d.current_url
    rows = d.find_elements(By.CSS_SELECTOR, "#inventory tbody tr")
    assert len(rows) == 4 and "Expiring from" in d.page_source, [r.text for r in rows]

    # A phone: nothing wider than the screen, and the domain still shown beside name, status
    # and expiry (who issued it and the last change are on the certificate's page).
    d.set_window_size(390, 844)
    d.get(server.url + "/console/certificates")
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    # ... nor is the inventory wider than its box (no sideways scrolling to see the expiry).
    assert d.execute_script("const w = document.querySelector('.table-wrap');"
                            "return w.scrollWidth <= w.clientWidth + 1"), "the table scrolls sideways"
    shown = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#inventory thead th") if th.is_displayed()]
    assert shown == ["Name", "Domain", "Status", "Expires"], shown
    assert any(c.is_displayed() and c.text == "shop.console.test"
               for c in d.find_elements(By.CSS_SELECTOR, "#inventory tbody td")), "no domain cell shown"
    d.execute_script("document.getElementById('inventory').scrollIntoView()")
    shot(backend, d, "inventory-phone")
    d.set_window_size(1280, 1000)

    # Sign out: back at the sign-in page; the session is gone on the server too.
    stale = d.get_cookie("openscm_console")["value"]
    with navigating(d):
        d.find_element(By.CSS_SELECTOR, "form.signout button").click()
    assert d.current_url.endswith("/console/sign-in"), d.current_url
    assert d.get_cookie("openscm_console") is None
    d.get(server.url + "/console/certificates")
    assert d.current_url.endswith("/console/sign-in")
    r = requests.get(server.url + "/console/certificates", allow_redirects=False,
                     headers={"Cookie": f"openscm_console={stale}"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in", r


def sign_in_browser(d, server, creds):
    d.get(server.url + "/console/sign-in")
    d.find_element(By.ID, "access_key").send_keys(creds["access_key"])
    with navigating(d):
        d.find_element(By.ID, "secret_key").send_keys(creds["secret_key"], Keys.ENTER)
    assert d.current_url.endswith("/console/certificates"), d.current_url


def push_history(server, cert_id):
    return server.v2("GET", f"/scm/cert/{cert_id}/push-history").json["push_history_list"]


def test_console_actions_in_chromium(server, creds, seeded, browser, backend):
    """The operator's actions (issue 20, items 12 and 13), each the API's own operation: push to
    a target chosen by name, push again to every target a certificate is deployed to, expiry
    reminders off and on, delete after a confirmation; an imported certificate's brand and type
    as the API shows them, and who issued each certificate. Each is in the audit log."""
    import json as _json

    d = browser
    d.set_window_size(1280, 1000)
    sign_in_browser(d, server, creds)
    api_id, shop = seeded["ids"][1], seeded["shop"]

    # Push a certificate deployed nowhere to a target chosen by name: nginx then serves it.
    d.get(server.url + f"/console/certificates/{api_id}")
    assert "Not deployed to any push target." in d.page_source
    assert not d.find_elements(By.ID, "push-all-button"), "nothing to push again to"
    options = [o.text for o in d.find_elements(By.CSS_SELECTOR, "#push-target option")]
    assert options == ["e2e-nginx"], options
    with navigating(d):
        d.find_element(By.ID, "push-target-button").click()
    assert d.current_url.endswith(f"/console/certificates/{api_id}#deployments"), d.current_url
    table = d.find_element(By.ID, "deployments-table").text
    # (The suite's nginx target has no TLS check: "delivered"; with one, "served".)
    assert re.search(r"e2e-nginx nginx (delivered|served) 1", table), table
    assert [h["push_service"] for h in push_history(server, api_id)] == ["ELB"], \
        push_history(server, api_id)
    newest = d.find_element(By.CSS_SELECTOR, "#push-history tbody tr").text
    assert "e2e-nginx" in newest and "success" in newest, newest

    # Push again to every target the shop certificate is deployed to (one: nginx).
    before = len(push_history(server, shop))
    d.get(server.url + f"/console/certificates/{shop}")
    button = d.find_element(By.ID, "push-all-button")
    assert "(1)" in button.text, button.text
    with navigating(d):
        button.click()
    assert d.current_url.endswith("#deployments"), d.current_url
    after = push_history(server, shop)
    assert len(after) == before + 1, after
    newest = d.find_element(By.CSS_SELECTOR, "#push-history tbody tr").text
    assert "e2e-nginx" in newest and "success" in newest, newest

    # Expiry reminders off, then on again: the page says which are on.
    state = d.find_element(By.ID, "reminders-state").text
    assert state.startswith("On:"), state
    with navigating(d):
        d.find_element(By.ID, "reminders-button").click()
    assert d.find_element(By.ID, "reminders-state").text.startswith("Off:")
    assert d.find_element(By.ID, "reminders-button").text == "Turn expiry reminders on"
    d.execute_script("document.getElementById('deployments').scrollIntoView()")
    shot(backend, d, "details-actions")
    with navigating(d):
        d.find_element(By.ID, "reminders-button").click()
    assert d.find_element(By.ID, "reminders-state").text.startswith("On:")

    # An imported certificate: brand and type as the API says (none: its chain is self-signed
    # and it was bought from no one), issued by no one OpenSCM knows.
    client = server.sdk_client(creds)
    shown = client.show_certificate(ShowCertificateRequest(certificate_id=seeded["long"]))
    d.get(server.url + f"/console/certificates/{seeded['long']}")
    facts = d.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert f"Brand\n{shown.brand or '—'}" in facts and f"Type\n{shown.type or '—'}" in facts, \
        (facts, shown.brand, shown.type)
    assert f"Domain type\n{shown.domain_type}" in facts, facts
    assert "Issued by\nimported (issuer CN=long.console.test)" in facts, facts
    # ... and one the built-in CA issued, as the API says too.
    shown = client.show_certificate(ShowCertificateRequest(certificate_id=shop))
    d.get(server.url + f"/console/certificates/{shop}")
    facts = d.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert f"Brand\n{shown.brand}\nType\n{shown.type}" in facts, (facts, shown.brand, shown.type)

    # Delete a bought, unissued certificate, after a confirmation: it is gone.
    paid = seeded["ids"][4]
    d.get(server.url + f"/console/certificates/{paid}")
    with navigating(d):
        d.find_element(By.ID, "delete-link").click()
    assert d.current_url.endswith(f"/console/certificates/{paid}/delete"), d.current_url
    assert "cannot be undone" in d.page_source
    # The browser does not send the form unticked ...
    d.find_element(By.ID, "delete-button").click()
    assert d.current_url.endswith("/delete"), d.current_url
    # ... ticked, it does.
    d.find_element(By.ID, "confirm").click()
    with navigating(d):
        d.find_element(By.ID, "delete-button").click()
    assert d.current_url.endswith("/console/certificates"), d.current_url
    assert server.v3("GET", f"/v3/scm/certificates/{paid}").status == 404
    assert paid not in d.page_source

    def audit(op):
        proc = server.admin("audit", "--output", "json", "--operation", op, "--limit", "5",
                            parse=False)
        return _json.loads(proc.stdout)

    assert [e["targets"] for e in audit("ConsolePushToTarget")][0] == [api_id]
    assert audit("ConsolePushToAllTargets")[0]["targets"] == [shop]
    assert len(audit("ConsoleUpdateReminders")) >= 2
    deleted = audit("ConsoleDeleteCertificate")[0]
    assert deleted["targets"] == [paid] and deleted["outcome"] == "ok", deleted
    assert deleted["account"] == creds["domain_id"] and deleted["credential"] == creds["access_key"]


def test_console_actions_refuse_forged_and_unconfirmed_forms(server, creds, seeded):
    """Every new form checks the session before its body, then its origin and CSRF token; a
    deletion not confirmed deletes nothing; a value out of range is refused."""
    s = console_session(server, creds)
    victim = seeded["ids"][5]
    base = server.url + f"/console/certificates/{victim}"
    token = csrf_of(s.get(base).text)
    forms = [("/push-all", {}), ("/push-target", {"target": "e2e-nginx"}),
             ("/reminders", {"reminders": "off"}), ("/delete", {"confirm": "yes"})]
    for path, data in forms:
        # No session: to sign-in, nothing done.
        r = requests.post(base + path, data={**data, "csrf": token}, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in", (path, r)
        # A forged token.
        r = s.post(base + path, data={**data, "csrf": "0" * 64}, allow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
        # From another site.
        r = s.post(base + path, data={**data, "csrf": token}, allow_redirects=False,
                   headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403, (path, r.status_code)
    assert server.v3("GET", f"/v3/scm/certificates/{victim}").status == 200
    # Not confirmed: 400, the confirmation page again, nothing deleted.
    r = s.post(base + "/delete", data={"csrf": token}, allow_redirects=False)
    assert r.status_code == 400 and "tick the box" in r.text, r.status_code
    assert server.v3("GET", f"/v3/scm/certificates/{victim}").status == 200
    # A bad switch value, and an unknown target.
    r = s.post(base + "/reminders", data={"csrf": token, "reminders": "maybe"}, allow_redirects=False)
    assert r.status_code == 400, r.status_code
    r = s.post(server.url + f"/console/certificates/{seeded['shop']}/push-target",
               data={"csrf": token, "target": "nowhere"}, allow_redirects=False)
    assert r.status_code in (400, 404), r.status_code
    # Push again to every target of a certificate deployed nowhere: refused, nothing queued.
    r = s.post(server.url + f"/console/certificates/{seeded['ids'][2]}/push-all",
               data={"csrf": token}, allow_redirects=False)
    assert r.status_code == 400, r.status_code
    assert push_history(server, seeded["ids"][2]) == []


def test_another_accounts_certificate_is_not_found_by_any_console_action(server, creds, seeded):
    """A signed-in user of another account cannot see or act on this account's certificates:
    every page and form answers 404 (not 403: which ids exist is not told), and nothing changes."""
    other = server.create_account("console-other")
    other_creds = server.create_credential(other["domain_id"])
    s = console_session(server, other_creds)
    inventory = s.get(server.url + "/console/certificates")
    assert inventory.status_code == 200 and "No certificates" in inventory.text
    assert "console-other" in inventory.text, "the header names the signed-in account"
    token = csrf_of(inventory.text)
    victim = seeded["shop"]
    base = server.url + f"/console/certificates/{victim}"
    for path in ("", "/delete", "/revoke"):
        r = s.get(base + path, allow_redirects=False)
        assert r.status_code == 404, (path, r.status_code)
    before = len(push_history(server, victim))
    for path, data in [("/push-all", {}), ("/push-target", {"target": "e2e-nginx"}),
                       ("/reminders", {"reminders": "off"}), ("/delete", {"confirm": "yes"}),
                       ("/revoke", {"confirm": "yes", "reason": "superseded"}),
                       ("/auto-renew", {"auto_renew": "off"}), ("/renew", {}), ("/export", {})]:
        r = s.post(base + path, data={**data, "csrf": token}, allow_redirects=False)
        assert r.status_code == 404, (path, r.status_code, r.text[:300])
        assert "PRIVATE KEY" not in r.text
    shown = server.v3("GET", f"/v3/scm/certificates/{victim}")
    assert shown.status == 200 and shown.json["status"] == "ISSUED", shown
    assert len(push_history(server, victim)) == before


# --------------------------------------------------------------------------- refusals


def test_no_session_is_sent_to_sign_in_and_nothing_is_done(server, seeded):
    for path in ("/console", "/console/certificates", "/console/timeline",
                 f"/console/certificates/{seeded['shop']}"):
        r = requests.get(server.url + path, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in", (path, r)
    r = requests.post(server.url + f"/console/certificates/{seeded['shop']}/export",
                      data={"csrf": "0" * 64}, allow_redirects=False)
    assert r.status_code == 303 and b"PRIVATE KEY" not in r.content, r
    r = requests.post(server.url + "/console/certificates/x/export", allow_redirects=False,
                      headers={"Cookie": "openscm_console=OSCM" + "0" * 64})
    assert r.status_code == 303, r


def test_bad_csrf_token_is_refused_and_nothing_is_done(server, creds, seeded):
    s = console_session(server, creds)
    page = s.get(server.url + f"/console/certificates/{seeded['shop']}")
    assert page.status_code == 200
    good = csrf_of(page.text)
    export = server.url + f"/console/certificates/{seeded['shop']}/export"
    for bad in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": good[:-1] + ("0" if good[-1] != "0" else "1")}):
        r = s.post(export, data=bad, allow_redirects=False)
        assert r.status_code == 403, (bad, r)
        assert b"PRIVATE KEY" not in r.content and "attachment" not in r.headers.get("Content-Disposition", "")
    # Another session's token does not do either.
    other = console_session(server, creds)
    other_csrf = csrf_of(other.get(server.url + "/console/certificates").text)
    assert other_csrf != good
    assert s.post(export, data={"csrf": other_csrf}, allow_redirects=False).status_code == 403
    # Sign-out with a bad token does not end the session.
    r = s.post(server.url + "/console/sign-out", data={"csrf": "1" * 64}, allow_redirects=False)
    assert r.status_code == 403
    assert s.get(server.url + "/console/certificates", allow_redirects=False).status_code == 200
    # The right one works: attachment, no-store, the PEM.
    r = s.post(export, data={"csrf": good}, allow_redirects=False)
    assert r.status_code == 200, r
    assert r.headers["Content-Disposition"] == f'attachment; filename="{seeded["shop"]}.pem"'
    assert r.headers["Cache-Control"] == "no-store"
    assert b"-----BEGIN CERTIFICATE-----" in r.content and b"-----BEGIN PRIVATE KEY-----" in r.content
    r = s.post(server.url + "/console/sign-out", data={"csrf": good}, allow_redirects=False)
    assert r.status_code == 303 and "Max-Age=0" in r.headers["Set-Cookie"]
    assert s.get(server.url + "/console/certificates", allow_redirects=False).status_code == 303


def test_security_headers_and_cookie_attributes(server, creds):
    r = requests.post(server.url + "/console/sign-in", allow_redirects=False, headers={"Origin": server.url},
                      data={"access_key": creds["access_key"], "secret_key": creds["secret_key"]})
    cookie = r.headers["Set-Cookie"]
    for attr in ("Path=/console", "Max-Age=28800", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attr in cookie.split("; "), cookie
    s = console_session(server, creds)
    for path in ("/console/certificates", "/console/timeline", "/console/sign-in"):
        r = s.get(server.url + path)
        assert r.status_code == 200, path
        h = r.headers
        assert h["Content-Security-Policy"].startswith("default-src 'none'"), h
        assert "script-src" not in h["Content-Security-Policy"]  # none at all
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert h["X-Frame-Options"] == "DENY" and h["Referrer-Policy"] == "no-referrer"
        assert h["X-Content-Type-Options"] == "nosniff" and h["Cache-Control"] == "no-store"
        assert re.fullmatch(r"[0-9a-f]{32}", h["X-Request-Id"]), h
        assert '<meta name="viewport"' in r.text and "<script" not in r.text
    css = requests.get(server.url + "/console/static/console.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert ":focus-visible" in css.text


def test_bad_and_revoked_credentials_are_refused_alike(server, creds):
    def attempt(ak, sk):
        r = requests.post(server.url + "/console/sign-in", allow_redirects=False, headers={"Origin": server.url},
                          data={"access_key": ak, "secret_key": sk})
        return r.status_code, re.search(r'role="alert">([^<]*)<', r.text).group(1) if r.status_code == 401 else r.text, r

    extra = server.create_credential(creds["domain_id"])
    server.admin("credential", "revoke", extra["access_key"], parse=False)
    unknown = attempt("NOSUCHKEY0000000000", creds["secret_key"])
    wrong = attempt(creds["access_key"], creds["secret_key"] + "x")
    revoked = attempt(extra["access_key"], extra["secret_key"])
    for status, message, r in (unknown, wrong, revoked):
        assert status == 401 and "openscm_console=" not in r.headers.get("Set-Cookie", ""), r
    assert unknown[1] == wrong[1] == revoked[1], (unknown[1], wrong[1], revoked[1])
    # Each refusal is logged with its real reason (never shown).
    logs = server.logs()
    assert "console sign-in refused" in logs
    for reason in ("UnknownKey", "BadSignature", "Revoked"):
        assert reason in logs, reason


def test_sign_in_is_throttled_per_access_key(server, creds):
    # A second credential of the account, so the other tests' credential is not locked.
    victim = server.create_credential(creds["domain_id"])
    for _ in range(5):
        r = requests.post(server.url + "/console/sign-in", allow_redirects=False, headers={"Origin": server.url},
                          data={"access_key": victim["access_key"], "secret_key": "wrong"})
        assert r.status_code == 401
    # Now even the right secret is refused, with the same message; another key still gets in.
    r = requests.post(server.url + "/console/sign-in", allow_redirects=False, headers={"Origin": server.url},
                      data={"access_key": victim["access_key"], "secret_key": victim["secret_key"]})
    assert r.status_code == 401 and "openscm_console=" not in r.headers.get("Set-Cookie", ""), r
    assert "throttled" in server.logs()
    console_session(server, creds)


def test_console_sign_ins_never_push_out_an_api_token(server, creds):
    """Sessions and API tokens have separate per-credential limits (20 each by default): signing
    in to the console past the limit ends the oldest session, never the credential's API token."""
    extra = server.create_credential(creds["domain_id"])
    issued = server.v3("POST", "/v3/auth/tokens", creds=extra)
    assert issued.status == 201, issued
    token = issued.headers["X-Subject-Token"]
    sessions = [console_session(server, extra) for _ in range(21)]
    r = server.raw("GET", "/v3/scm/certificates?limit=10&offset=0", headers={"X-Auth-Token": token})
    assert r.status == 200, r
    # The 21st sign-in ended the first session only.
    assert sessions[0].get(server.url + "/console/certificates", allow_redirects=False).status_code == 303
    for s in (sessions[1], sessions[-1]):
        assert s.get(server.url + "/console/certificates", allow_redirects=False).status_code == 200
    # A session cookie is not an API token, nor the reverse.
    cookie = sessions[-1].headers["Cookie"].split("=", 1)[1]
    r = server.raw("GET", "/v3/scm/certificates?limit=10&offset=0", headers={"X-Auth-Token": cookie})
    assert r.status == 401, r
    r = requests.get(server.url + "/console/certificates", allow_redirects=False,
                     headers={"Cookie": f"openscm_console={token}"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in", r


def test_a_session_works_on_every_server_of_a_postgres_cluster(openscm_bin, pg_base, tmp_path):
    """Sessions are stored tokens: signed in on one server, the cookie works on another on the
    same database, and signing out on that one ends it on the first."""
    backend = Backend("postgres", pg_base)
    factory = ServerFactory(openscm_bin, tmp_path, backend)
    try:
        a, b, creds = factory.cluster_of_two("")
        on_a = console_session(a, creds)
        on_b = requests.Session()
        on_b.headers["Cookie"] = on_a.headers["Cookie"]
        page = on_b.get(b.url + "/console/certificates", allow_redirects=False)
        assert page.status_code == 200, page
        # The CSRF token is the same on both (derived from the session, nothing shared).
        assert csrf_of(page.text) == csrf_of(on_a.get(a.url + "/console/certificates").text)
        r = on_b.post(b.url + "/console/sign-out", data={"csrf": csrf_of(page.text)}, allow_redirects=False)
        assert r.status_code == 303
        r = on_a.get(a.url + "/console/certificates", allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in", r
    finally:
        factory.close()
        backend.cleanup()


def test_console_sign_in_export_and_sign_out_are_audited(server, creds, seeded):
    """An export of a key through the console is in the audit log like an API export, with its
    certificate, credential and source address; so are sign-in and sign-out."""
    import json as _json

    s = console_session(server, creds)
    page = s.get(server.url + f"/console/certificates/{seeded['shop']}")
    token = csrf_of(page.text)
    exported = s.post(server.url + f"/console/certificates/{seeded['shop']}/export",
                      data={"csrf": token})
    assert exported.status_code == 200 and "PRIVATE KEY" in exported.text
    refused = s.post(server.url + f"/console/certificates/{seeded['shop']}/export",
                     data={"csrf": "forged"})
    assert refused.status_code == 403
    s.post(server.url + "/console/sign-out", data={"csrf": token}, allow_redirects=False)

    def audit(*args):
        proc = server.admin("audit", "--output", "json", *args, parse=False)
        return _json.loads(proc.stdout)

    exports = audit("--operation", "ConsoleExportCertificate", "--limit", "2")
    assert [e["outcome"] == "ok" for e in exports] == [False, True], exports
    for e in exports:
        assert e["targets"] == [seeded["shop"]], e
        assert e["account"] == creds["domain_id"] and e["credential"] == creds["access_key"], e
        assert e["source"] == "127.0.0.1", e
    assert audit("--operation", "ConsoleSignIn", "--limit", "1")
    assert audit("--operation", "ConsoleSignOut", "--limit", "1")


def test_a_page_on_another_site_cannot_sign_the_browser_in(server, creds, browser, tmp_path):
    """Login CSRF: a page on another site (served from `localhost`, while the console is at
    127.0.0.1: another site to the browser) posts the attacker's credentials to the console's
    sign-in form when the victim clicks. The console refuses it (the browser says the form is
    cross-site) and the victim's browser gets no session."""
    import http.server
    import socketserver

    from e2e_helpers import free_port

    attacker = server.create_credential(creds["domain_id"])
    page = tmp_path / "attacker.html"
    page.write_text(
        "<!doctype html><title>win a prize</title>"
        f"<form method='post' action='{server.url}/console/sign-in'>"
        f"<input type='hidden' name='access_key' value='{attacker['access_key']}'>"
        f"<input type='hidden' name='secret_key' value='{attacker['secret_key']}'>"
        "<button id='prize' type='submit'>Claim</button></form>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass

    port = free_port()
    httpd = socketserver.TCPServer(("127.0.0.1", port), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        browser.get(server.url + "/console/sign-in")
        browser.delete_all_cookies()  # a clean start: no session on the console's site
        browser.get(f"http://localhost:{port}/attacker.html")
        browser.find_element(By.ID, "prize").click()
        WebDriverWait(browser, 15).until(lambda d: "/console/" in d.current_url)
        assert "Refused" in browser.page_source or "not sent from this console" in browser.page_source, \
            browser.page_source[:2000]
        # The browser is not signed in to the attacker's account.
        browser.get(server.url + "/console/certificates")
        WebDriverWait(browser, 15).until(lambda d: d.current_url.endswith("/console/sign-in"))
        assert attacker["access_key"] not in browser.page_source
        assert "console form refused: sent from another site" in server.logs()
    finally:
        httpd.shutdown()
        httpd.server_close()
