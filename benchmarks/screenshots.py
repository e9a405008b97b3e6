"""Screenshots for the README, taken with the browser code the tests use (headless Debian Chromium).

    python -m benchmarks.screenshots docs/screenshots                     # listen/ and the project's store
    python -m benchmarks.screenshots shots --mlflow-url http://127.0.0.1:5000/#/experiments/1/runs?...
    python -m benchmarks.screenshots shots --skip-mlflow

Writes into the folder given (created if needed):

- ``listen-page.png``: the top of the listening page (``--listen``, default ``listen/index.html``) once every
  clip has loaded;
- ``listen-filtered.png``: the same page filtered to one speaker pair;
- ``listen-test.png``: the listening test (``vc listen``) as a rater sees it, built in a temporary folder
  from the run's conversions (``converted/``, ``data/corpus``) and served on a free loopback port;
- ``mlflow-runs.png``: the MLflow UI on the runs compared. Without ``--mlflow-url`` the project's UI is
  started on a free loopback port against the project's store (``MLFLOW_TRACKING_URI`` or ``mlflow.db``),
  the comparison view is saved (:func:`vc.mlflow_ui.publish_view`), and the server is stopped afterwards.

Each PNG's path is printed on stdout. Needs chromium and chromium-driver (``apt-get install -y chromium
chromium-driver``) and the ``dev`` extra (selenium).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.browser import audio_states, browser_missing, file_url, free_port, new_driver, wait_until
from vc.mlflow_ui import (
    COMPARED,
    base_url,
    comparison_url,
    metric_column,
    publish_view,
    start_server,
    stop_server,
    wait_until_up,
)

log = logging.getLogger("benchmarks.screenshots")

#: The UI's local-storage entries that keep the AI-assistant panel closed in a fresh browser profile (it
#: opens by itself on a first visit and would cover a third of the runs table).
_QUIET_UI = {
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
}
_COLUMNS_JS = """return Array.from(document.querySelectorAll('.ag-header-cell[col-id]'))
  .map(e => e.getAttribute('col-id'))"""


def shoot_listening_page(driver: Any, page: Path, out: Path) -> list[Path]:
    """``listen-page.png`` and ``listen-filtered.png`` (the first pair only) of the page at ``page``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    if not page.is_file():
        raise SystemExit(f"{page}: no listening page (run `dvc repro listen_page`, or give --listen)")
    driver.get(file_url(page))
    states = audio_states(driver)
    failed = [s["src"] for s in states if s["duration"] is None]
    if failed:
        log.warning("%d of %d clips did not load: %s", len(failed), len(states), failed[:3])
    shots = [out / "listen-page.png"]
    driver.save_screenshot(str(shots[0]))
    select = Select(driver.find_element(By.ID, "pair-filter"))
    if len(select.options) > 1:
        select.select_by_index(1)
        driver.execute_script("window.scrollTo(0, 0)")
        shots.append(out / "listen-filtered.png")
        driver.save_screenshot(str(shots[1]))
    return shots


@contextlib.contextmanager
def listening_test(root: Path) -> Iterator[str]:
    """A listening test built from the run in ``root`` (in a temporary folder, on a free loopback port,
    one rater invited); yields the rater's link."""
    import threading

    import uvicorn

    from vc.listen.app import create_app
    from vc.listen.protocol import build_definition, save_definition
    from vc.listen.store import ListenFolder, RatingStore

    with tempfile.TemporaryDirectory(prefix="vc-listen-shot-") as tmp:
        folder = ListenFolder(Path(tmp))
        definition = build_definition(
            root / "converted" / "experiments",
            root / "data" / "corpus",
            baselines_dir=root / "converted" / "baselines",
            sentences=1,
        )
        save_definition(definition, folder.definition)
        (token,) = RatingStore(folder.database).invite(1)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(folder.root), host="127.0.0.1", port=port, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, 30, 0.1, "the listening test's server")
        try:
            yield f"http://127.0.0.1:{port}/t/{token}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def shoot_listening_test(driver: Any, url: str, out: Path) -> Path:
    """``listen-test.png``: the first trial of the listening test once its audio has loaded."""
    driver.get(url)
    states = audio_states(driver)
    if any(s["duration"] is None for s in states):
        log.warning("the listening test's audio did not load: %s", states)
    shot = out / "listen-test.png"
    driver.save_screenshot(str(shot))
    return shot


@contextlib.contextmanager
def project_ui(root: Path) -> Iterator[str]:
    """The project's MLflow UI on a free loopback port with the comparison view saved; yields its link."""
    from vc.config import load_params_file

    params = root / "params.yaml"
    experiment = load_params_file(params).tracking.experiment if params.is_file() else "stargan-vc2"
    exp_id = publish_view(experiment, root)
    port = free_port()
    server_log = Path(tempfile.gettempdir()) / f"vc-mlflow-ui-{port}.log"
    process = start_server("127.0.0.1", port, root, log_file=server_log)
    try:
        try:
            seconds = wait_until_up(base_url("127.0.0.1", port), process)
        except (RuntimeError, TimeoutError) as err:
            raise SystemExit(f"{err} (its log: {server_log})") from None
        log.info("MLflow UI up after %.1f s", seconds)
        yield comparison_url(base_url("127.0.0.1", port), exp_id)
    finally:
        stop_server(process)


def shoot_mlflow(driver: Any, url: str, out: Path) -> Path:
    """``mlflow-runs.png``: the runs table at ``url`` once the compared metrics' columns are shown."""
    origin = url.split("#", 1)[0]
    driver.get(origin)
    for key, value in _QUIET_UI.items():
        driver.execute_script("window.localStorage.setItem(arguments[0], arguments[1])", key, value)
    driver.get(url)
    wanted = {metric_column(m) for m in COMPARED}
    try:
        wait_until(
            lambda: wanted <= set(driver.execute_script(_COLUMNS_JS)), 60, 0.25, "the runs table's columns"
        )
    except TimeoutError:
        log.warning("the compared metrics' columns did not appear (no evaluated runs yet?); shooting anyway")
    time.sleep(1.0)  # let the grid settle its widths
    shot = out / "mlflow-runs.png"
    driver.save_screenshot(str(shot))
    return shot


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder the PNGs are written to")
    parser.add_argument("--listen", default="listen/index.html", help="the listening page")
    parser.add_argument(
        "--mlflow-url", default=None, help="a running UI's link (default: start the project's)"
    )
    parser.add_argument("--skip-listen", action="store_true")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-test", action="store_true", help="no screenshot of the listening test")
    parser.add_argument("--size", default="1400x1000", help="window size, WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    why = browser_missing()
    if why:
        raise SystemExit(f"no browser for screenshots: {why}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))
    driver = new_driver(width, height)
    shots: list[Path] = []
    try:
        if not args.skip_listen:
            shots += shoot_listening_page(driver, Path(args.listen), out)
        if not args.skip_test:
            with listening_test(Path.cwd()) as url:
                shots.append(shoot_listening_test(driver, url, out))
        if not args.skip_mlflow:
            if args.mlflow_url:
                shots.append(shoot_mlflow(driver, args.mlflow_url, out))
            else:
                with project_ui(Path.cwd()) as url:
                    shots.append(shoot_mlflow(driver, url, out))
    finally:
        driver.quit()
    for shot in shots:
        sys.stdout.write(f"{shot}\n")


if __name__ == "__main__":
    main()
