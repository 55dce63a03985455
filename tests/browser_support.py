"""Browser test support: the app (test database, a clock the test controls) served by a real uvicorn on
loopback in a thread, and Debian's Chromium driven by Playwright. Load it with
`pytest_plugins = ["tests.api_support", "tests.browser_support"]`.

Screenshots of every page a test visits go to test-artifacts/screenshots/ (kept by CI as artifacts)."""
from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.api_support import PASSWORD

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The test app (api_support's: clock overridable through api_clock) on a real socket."""
    import uvicorn
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event loop on the main
    thread while it runs, and code that calls asyncio.run() (pyHanko's signing) fails beside it."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, live_server, request):
    """new_page(username=None, viewport=VIEWPORT) → a page in a fresh browser context (its own cookies),
    signed in as that user when one is given. Closed after the test."""
    contexts = []

    def make(username: str | None = None, viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or VIEWPORT, locale="vi-VN",
                                      timezone_id="Asia/Ho_Chi_Minh", base_url=live_server)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if username:
            login(page, username)
        return page
    yield make
    for context in contexts:
        context.close()


def login(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:2000]


@pytest.fixture
def shot(request):
    """shot(page, name) saves a full-page screenshot as test-artifacts/screenshots/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^\w.-]+", "_", request.node.name)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return take


def save_pdf_page(pdf: bytes, name: str) -> Path | None:
    """The first page of a PDF as a PNG beside the screenshots (headless Chromium shows no PDF viewer, so
    an embedded receipt would otherwise be an empty frame in the artifacts)."""
    try:
        import pypdfium2
    except ImportError:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    document = pypdfium2.PdfDocument(pdf)
    document[0].render(scale=1.5).to_pil().save(path)
    document.close()
    return path


def unlabelled_controls(page) -> list[str]:
    """Form controls without an accessible label (label[for], a wrapping label, aria-label(ledby)).
    Hidden inputs and buttons with text are fine."""
    return page.evaluate("""() => {
        const bad = [];
        for (const el of document.querySelectorAll('input, select, textarea')) {
            if (el.type === 'hidden') continue;
            const labelled = (el.labels && el.labels.length) || el.getAttribute('aria-label')
                || el.getAttribute('aria-labelledby') || el.getAttribute('title');
            if (!labelled) bad.push(el.outerHTML.slice(0, 120));
        }
        return bad;
    }""")

