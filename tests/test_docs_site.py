"""The documentation site, built by the README's command and read in a real browser (Debian's chromium, driven by
selenium through chromium-driver) over a local HTTP server on 127.0.0.1: every page loads with no console error, every
image is decoded (natural width > 0), every internal link leads to a page of the site (and to an anchor there when it
names one), and the site's search for `barlow_twins_loss` finds its page.

The browser and its driver come from Debian (`apt-get install chromium chromium-driver`, done by .ci/run). Without them
the test is skipped, except under CI (CI=true), where it fails.
"""
import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _need(ok: bool, why: str):
    if ok: return
    if os.environ.get("CI"): pytest.fail(f"{why} (CI must have it: see .ci/run)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def site():
    "The site built from this checkout, served on a free port of 127.0.0.1; yields (base URL, site folder)."
    import build_docs
    _need(bool(CHROMIUM and DRIVER), "no chromium / chromedriver: apt-get install chromium chromium-driver")
    if os.environ.get("PID_SSL_DOCS_BUILT") and not os.environ.get("CI"):  # to rerun the browser checks on a built site
        folder = build_docs.SITE
    else:
        folder = build_docs.build(paper=os.environ.get("PID_SSL_DOCS_PAPER", "1") == "1")
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)  # the driver named: no download attempted
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# every image of the page, decoded or not: the sources of those that fail (natural width 0 after decoding)
_IMAGES = """const done = arguments[arguments.length - 1];
Promise.all(Array.from(document.images).map(i => i.decode().then(() => null, () => null)
  .then(() => (i.complete && i.naturalWidth > 0) ? null : (i.currentSrc || i.src)))).then(r => done(r.filter(x => x)));"""


def _page_problems(base: str, folder: Path, browser) -> list[str]:
    "Every page of the site loaded in turn: console errors, images not decoded, internal links that lead nowhere."
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html"))
    assert {"index.html", "nbs/06_losses.html", "docs/running.html", "results/reports/cpu/report.html"} <= set(pages)
    errors, ids, links = [], {}, set()
    for page in pages:
        browser.get(base + page)
        for e in browser.get_log("browser"):
            if e["level"] == "SEVERE": errors.append(f"{page}: console: {e['message']}")
        errors += [f"{page}: image not decoded: {src}" for src in browser.execute_async_script(_IMAGES)]
        ids[page] = set(browser.execute_script("return Array.from(document.querySelectorAll('[id]'), e => e.id)"))
        hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]'), a => a.href)")
        links |= {(page, h) for h in hrefs if h.startswith(base)}
    assert len(links) > len(pages), "too few internal links found: is the navigation rendered?"
    for page, href in sorted(links):
        url, frag = urldefrag(href)
        target = urlsplit(url).path.lstrip("/") or "index.html"
        if target.endswith("/"): target += "index.html"
        if not (folder / target).is_file():
            errors.append(f"{page}: link to {href}: no such file in the site")
        elif frag and target.endswith(".html") and frag not in ids.get(target, set()):
            errors.append(f"{page}: link to {href}: no element with id {frag!r} on {target}")
    return errors


def _search(base: str, browser, words: str) -> list[str]:
    "The links of the site search's results for `words`, typed into the header's search box."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(base + "index.html")
    box = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")  # in the header at the window's width
    box.click()
    box.send_keys(words)
    return WebDriverWait(browser, 60).until(lambda d: [a.get_attribute("href") for a in
                                                       d.find_elements(By.CSS_SELECTOR, ".md-search-result__link")])


def test_docs_site_in_a_browser(site, browser):
    "One test, so that pytest-xdist builds the site once (the build writes _docs_src/ and _site/ of the checkout)."
    base, folder = site
    errors = _page_problems(base, folder, browser)
    assert not errors, f"{len(errors)} problem(s):\n" + "\n".join(errors[:50])
    found = _search(base, browser, "barlow_twins_loss")
    assert any(urlsplit(h).path.endswith("/nbs/06_losses.html") for h in found), f"search results: {found}"
