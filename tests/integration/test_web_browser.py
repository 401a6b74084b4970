"""The web window as a person uses it: Debian's Chromium, driven by Selenium, on `monitor
serve` over a database filled by `monitor run --once` (loopback feeds, a real apprise target
that is down, then back)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import DATA, ROOT, FeedServer, Webhook, monitor_env, write_config
from tests.integration.servers import free_port, wait_port
from tests.processes import Processes

pytestmark = pytest.mark.slow
TOKEN = "desk-token-4d1f"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EVIL = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2> Haut-Karabakh"


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver (browsers cannot be downloaded here)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail(
            "the browser tests need Debian's Chromium: apt-get install -y chromium "
            "chromium-driver (/usr/bin/chromium and /usr/bin/chromedriver are missing)"
        )
    return str(CHROMIUM), str(CHROMEDRIVER)


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--window-size=1280,900", "--lang=fr"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromium[1]), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def run_monitor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "monitor", *args], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


@dataclass
class Served:
    base: str
    env: dict[str, str]
    db: Path
    hook: Webhook


@pytest.fixture
def served(tmp_path: Path, feed_server: FeedServer, webhook: Webhook) -> Iterator[Served]:
    feeds = [
        {"url": feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes()), "name": "Fil A"},
        {"url": feed_server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes()), "name": "Fil B"},
        {
            "url": feed_server.add("/c.xml", (DATA / "hostile_web.xml").read_bytes()),
            "name": "Fil C",
        },
    ]
    config = write_config(tmp_path / "config", feeds, [{"url": webhook.url, "name": "desk-hook"}])
    db = tmp_path / "monitor.db"
    # The target is down: the first round fails; given up after ~0.4 s, the second is dead.
    env = monitor_env(config, f"sqlite:///{db}", MONITOR_RETRY_BASE_SECONDS="0.05",
                      MONITOR_DELIVERY_GIVE_UP_HOURS="0.0001")  # fmt: skip
    webhook.down = True
    run_monitor(env, "run", "--once")
    time.sleep(0.5)
    run_monitor(env, "run", "--once")
    with sqlite3.connect(db) as c:
        assert {s for (s,) in c.execute("SELECT status FROM deliveries")} == {"dead"}
    port = free_port()
    procs = Processes({**env, "MONITOR_WEB_TOKEN": TOKEN}, tmp_path)
    procs.spawn([sys.executable, "-m", "monitor", "serve", "--port", str(port)], "serve")
    try:
        wait_port(port, up=True, timeout=60)
    except TimeoutError:
        procs.stop()
        raise AssertionError(procs.log("serve")) from None
    yield Served(f"http://127.0.0.1:{port}", env, db, webhook)
    procs.stop()


def wait_until(driver: Any, cond: Any, timeout: float = 10) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # htmx replaces elements: one found just before a swap goes stale, and is looked up again.
    wait = WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(cond)


def test_a_desk_analyst_uses_the_window(served: Served, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b = browser
    b.get(served.base + "/")
    titles = [e.text for e in b.find_elements(By.CSS_SELECTOR, "a.story-title")]
    assert len(titles) == 4 and any("OTSC" in t for t in titles)
    errors = [e for e in b.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # no CSP violation, no script error
    b.save_screenshot(str(tmp_path / "timeline.png"))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copy(tmp_path / "timeline.png", ROOT / "docs" / "screenshot-timeline.png")

    # Filter a topic: htmx swaps the list in and the address bar follows.
    Select(b.find_element(By.ID, "topic-filter")).select_by_value("otsc")
    wait_until(b, lambda d: "topic=otsc" in d.current_url)
    wait_until(b, lambda d: len(d.find_elements(By.CSS_SELECTOR, "a.story-title")) == 1)
    only = b.find_element(By.CSS_SELECTOR, "a.story-title")
    assert "OTSC" in only.text

    # Open the story: its source, why it matched, its dead delivery.
    only.click()
    wait_until(b, lambda d: "/stories/" in d.current_url)
    story_url = b.current_url
    assert "Fil B" in b.page_source and "alliance militaire" in b.page_source
    assert b.find_element(By.CSS_SELECTOR, "tr.delivery .dstate").text == "dead"

    # Feedback without the token: refused, and the page says how to give it.
    b.find_element(By.CSS_SELECTOR, "button[value=noise]").click()
    wait_until(b, lambda d: "MONITOR_WEB_TOKEN" in d.find_element(By.ID, "feedback").text)
    assert "No feedback yet" in b.find_element(By.ID, "feedback").text
    token_form = b.find_element(By.ID, "token-form")
    token_form.find_element(By.NAME, "token").send_keys(TOKEN)
    token_form.find_element(By.CSS_SELECTOR, "button").click()
    wait_until(b, lambda d: not d.find_elements(By.ID, "token-form"))
    assert b.current_url == story_url  # back where the analyst was
    b.find_element(By.NAME, "who").send_keys("Analyste Caucase")
    b.find_element(By.CSS_SELECTOR, "button[value=noise]").click()
    wait_until(b, lambda d: "feedback saved" in d.find_element(By.ID, "feedback").text)
    history = b.find_element(By.CSS_SELECTOR, "#feedback .history").text
    assert "noise by Analyste Caucase" in history
    # Wrong topic, with the one it should have had.
    Select(b.find_element(By.NAME, "correct_topic")).select_by_value("russian_mediation")
    b.find_element(By.CSS_SELECTOR, "button[value=wrong-topic]").click()
    wait_until(b, lambda d: "otsc → russian_mediation" in d.find_element(By.ID, "feedback").text)
    with sqlite3.connect(served.db) as c:
        rows = c.execute("SELECT verdict, topic, correct_topic, who FROM feedback ORDER BY id")
        assert list(rows) == [
            ("noise", None, None, "Analyste Caucase"),
            ("wrong-topic", "otsc", "russian_mediation", "Analyste Caucase"),
        ]

    # Retry a dead delivery; with the target back, the next run delivers it.
    b.get(served.base + "/deliveries?state=dead")
    rows = b.find_elements(By.CSS_SELECTOR, "tr.delivery")
    assert len(rows) == 4
    first_id = rows[0].get_attribute("id")
    rows[0].find_element(By.CSS_SELECTOR, "button.retry").click()
    wait_until(b, lambda d: "queued" in d.find_element(By.ID, first_id).text)
    assert (
        b.find_element(By.ID, first_id).find_element(By.CSS_SELECTOR, ".dstate").text == "pending"
    )  # decided again, not tried yet
    served.hook.down = False
    run_monitor(served.env, "run", "--once")
    assert len(served.hook.received) == 1  # only the retried one: the others stay dead
    b.get(served.base + "/deliveries?state=sent")
    assert b.find_element(By.ID, first_id).find_element(By.CSS_SELECTOR, ".dstate").text == "sent"


def test_hostile_feed_text_does_not_run(served: Served, browser: Any) -> None:
    """The parser strips markup, but what the window shows must be inert whatever is stored:
    a title carrying a script and an onerror handler, a `javascript:` link."""
    from selenium.webdriver.common.by import By

    with sqlite3.connect(served.db) as c:
        (sid,) = c.execute("SELECT id FROM stories WHERE title LIKE '%rompu%'").fetchone()
        c.execute("UPDATE stories SET title = ? WHERE id = ?", (EVIL, sid))
        c.execute("UPDATE items SET title = ?, link = 'javascript:window.pwned=3' "
                  "WHERE story_id = ?", (EVIL, sid))  # fmt: skip
    b = browser
    for path in ("/", f"/stories/{sid}", "/deliveries?state=dead"):
        b.get(served.base + path)
        time.sleep(0.3)  # give an image error handler the time it would need
        assert b.execute_script("return window.pwned === undefined"), path
        assert EVIL in b.find_element(By.TAG_NAME, "main").text, path  # shown as text
        hrefs = [a.get_attribute("href") or "" for a in b.find_elements(By.TAG_NAME, "a")]
        assert not any(h.lower().startswith("javascript:") for h in hrefs), path
    for link in b.find_elements(By.TAG_NAME, "a"):
        if "rompu" in (link.text or ""):
            link.click()
    assert b.execute_script("return window.pwned === undefined")
    with urllib.request.urlopen(served.base + "/topics/karabakh_ceasefire.atom") as r:
        assert b"javascript:" not in r.read()


def test_a_split_renames_the_story_in_the_tab_too(served: Served, browser: Any) -> None:
    """Splitting off the item a story was named after renames the story: htmx redraws the
    story, heading and all, and the tab's title (what the tab strip and the history show)
    follows; it kept the old name before the answer carried it. Back to the timeline then
    shows the story as it now is, not the list the browser kept from before the split."""
    from selenium.webdriver.common.by import By

    from monitor import pipeline
    from monitor.settings import load_settings
    from monitor.store.models import Item, Story
    from tests.test_web import SOLDIER, Filled, merge_wrongly

    rt = pipeline.Runtime.build(load_settings(served.env), migrate=False)
    f = Filled(rt, served.env, served.hook, Path())
    sid, soldier = merge_wrongly(f)  # the soldier's report, wrongly in the Latchine story
    with rt.db.session() as s:
        old = s.get(Story, sid)
        first = s.scalars(
            select(Item.id).where(Item.story_id == sid, Item.id != soldier).order_by(Item.id)
        ).first()
        assert old is not None and first is not None
        old_title = old.title
    b = browser
    b.get(served.base + "/")
    token_form = b.find_element(By.ID, "token-form")
    token_form.find_element(By.NAME, "token").send_keys(TOKEN)
    token_form.find_element(By.CSS_SELECTOR, "button").click()
    wait_until(b, lambda d: not d.find_elements(By.ID, "token-form"))

    def listed(d: Any) -> list[str]:
        return [e.text for e in d.find_elements(By.CSS_SELECTOR, "a.story-title")]

    assert old_title in listed(b) and len(listed(b)) == 4
    b.find_element(By.CSS_SELECTOR, f"a.story-title[href='/stories/{sid}']").click()
    wait_until(b, lambda d: d.current_url == f"{served.base}/stories/{sid}")
    assert b.title == f"monitor — {old_title}"
    split = f"form[hx-post='/stories/{sid}/split']:has(input[name=item][value='{first}']) button"
    b.find_element(By.CSS_SELECTOR, split).click()
    wait_until(b, lambda d: "split off" in d.find_element(By.ID, "sources").text)
    with rt.db.session() as s:
        new = s.get(Story, sid)
        assert new is not None
        new_title = new.title
    rt.db.dispose()
    assert new_title != old_title and SOLDIER in new_title  # named after the item that stayed
    assert b.find_element(By.ID, "story-title").text == new_title
    assert b.title == f"monitor — {new_title}"
    assert not b.find_elements(By.CSS_SELECTOR, "body title")  # taken out, not swapped in
    assert b.current_url == f"{served.base}/stories/{sid}"  # the same page, redrawn
    # Back: the browser restores the timeline it kept (4 stories, the old name); it is loaded
    # again, and lists the renamed story and the new one.
    b.back()
    wait_until(b, lambda d: new_title in listed(d))
    assert len(listed(b)) == 5 and b.title == "monitor — timeline"
