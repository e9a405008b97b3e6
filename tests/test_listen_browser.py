"""A simulated rater in a real headless Chromium completes a small listening test: every trial's audio loads
with a duration, the progress bar moves, a reload continues where the rater stopped, and the answers are in
SQLite and in the export. Skips, saying why, where Debian's chromium / chromium-driver are absent."""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from browser import audio_states, wait_until
from test_listen import EVIL, make_test, thread_server

from vc.listen.protocol import SIMILARITY_CHOICES, load_definition, rater_order
from vc.listen.store import RatingStore, export_ratings

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


def _trial(chrome: WebDriver) -> tuple[str, str, int] | None:
    """``(item id, task, progress value)`` of the trial on the page; None on the thank-you page."""
    from selenium.webdriver.common.by import By

    if chrome.find_elements(By.ID, "done"):
        return None
    trial = chrome.find_element(By.ID, "trial")
    value = int(chrome.find_element(By.ID, "progress").get_attribute("value"))
    return trial.get_attribute("data-item"), trial.get_attribute("data-task"), value


def test_a_rater_completes_the_test_in_chromium(chrome: WebDriver, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    folder = make_test(tmp_path, per_rater=2, text=EVIL)
    definition = load_definition(folder.definition)
    token = RatingStore(folder.database).invite(1)[0]
    order = rater_order(definition, token)
    chosen: dict[str, str] = {}
    with thread_server(folder) as url:
        chrome.get(f"{url}/t/{token}")
        for k, expected in enumerate(order):
            trial = wait_until(lambda: _trial(chrome), what=f"trial {k + 1}")
            assert trial == (expected.id, expected.task, k)  # the rater's order; the bar counts answers
            states = audio_states(chrome)
            assert len(states) == (2 if expected.task == "similarity" else 1)
            assert all(s["error"] is None and s["duration"] and s["duration"] > 0.2 for s in states), states
            text = chrome.find_element(By.CLASS_NAME, "text").text
            assert EVIL in text  # shown as text, never as markup
            if k == 1:  # a reload shows the same unanswered trial
                chrome.refresh()
                assert wait_until(lambda: _trial(chrome), what="the reloaded trial") == trial
            buttons = chrome.find_elements(By.CSS_SELECTOR, "button[data-answer]")
            button = buttons[k % len(buttons)]
            chosen[expected.id] = button.get_attribute("data-answer")
            button.click()
            wait_until(lambda shown=trial: _trial(chrome) != shown, what=f"the page after answer {k + 1}")
        assert wait_until(lambda: chrome.find_elements(By.ID, "done"), what="the thank-you page")
        chrome.save_screenshot(str(tmp_path / "listen-done.png"))
    with closing(sqlite3.connect(folder.database)) as db:
        rows = dict(db.execute("SELECT item_id, answer FROM answers WHERE token = ?", (token,)).fetchall())
    assert rows == chosen and len(rows) == 4
    assert set(rows.values()) & set(SIMILARITY_CHOICES) and set(rows.values()) & {"1", "2", "3", "4", "5"}
    out = export_ratings(RatingStore(folder.database), definition, folder=folder.exports)
    exported = {r["item_id"]: r["answer"] for r in csv.DictReader(out.open()) if r["rater"] == token}
    assert exported == chosen
