"""The rating web app: one page per trial, each answer POSTed as JSON and committed before the reply.

FastAPI on uvicorn, both already in the dependency set as MLflow's server stack (so no new package, and a
framework and server that are actively maintained): uvicorn is a production ASGI server that serves many
raters at once from its thread pool, and the app stays a few plain functions. Pages are rendered on the
server (no front-end build, no CDN): the page shows the rater's next unanswered trial, so a reload continues
where they stopped. Every text that reaches the page is HTML-escaped; the one inline script carries a
per-response CSP nonce; the token in the URL is kept out of ``Referer`` headers.

Routes (``{token}`` is the rater's token; unknown or revoked tokens get 403 everywhere):

- ``GET /t/{token}``: the next trial (or a thank-you page), with a progress bar.
- ``GET /audio/{token}/{item}/stimulus.wav`` (and ``reference.wav``): the loudness-matched copy.
- ``POST /api/{token}/answer`` with ``{"item": id, "answer": 1..5 | "same-sure" | ...}``: 200 when stored
  (or the same answer was stored before: idempotent), 400 for a malformed or out-of-range answer, 409 for a
  different answer to an answered item (answers are final), 403 for a bad token; nothing is stored on error.
- ``GET /api/{token}/progress``: ``{"answered": n, "total": m}``.
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import secrets
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from vc.listen.playback import playback_copy
from vc.listen.protocol import (
    NATURALNESS_CHOICES,
    SIMILARITY_CHOICES,
    Item,
    TestDefinition,
    file_sha256,
    load_definition,
    rater_order,
)
from vc.listen.store import ListenFolder, RatingStore

__all__ = ["create_app", "serve"]

log = logging.getLogger("vc.listen")
_MAX_BODY = 4096
_NAT_LABELS = ("1: bad (completely unnatural)", "2: poor", "3: fair", "4: good", "5: excellent (natural)")
_SIM_LABELS = (
    "Same speaker, absolutely sure",
    "Same speaker, not sure",
    "Different speaker, not sure",
    "Different speaker, absolutely sure",
)
_INSTRUCTIONS = {
    "naturalness": "Listen to the sample. How natural does it sound, as human speech?",
    "similarity": "Listen to both recordings. Could they have been spoken by the same person? Ignore the "
    "words and the audio quality; judge only the voice.",
}
_SCRIPT = """
const trial = document.getElementById('trial');
const buttons = Array.from(document.querySelectorAll('button[data-answer]'));
const error = document.getElementById('error');
for (const b of buttons) {
  b.addEventListener('click', async () => {
    buttons.forEach(x => { x.disabled = true; });
    const raw = b.dataset.answer;
    const answer = trial.dataset.task === 'naturalness' ? Number(raw) : raw;
    try {
      const r = await fetch(trial.dataset.post, {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({item: trial.dataset.item, answer: answer})});
      if (r.ok) { location.reload(); return; }
      const e = await r.json().catch(() => ({error: r.statusText}));
      error.textContent = 'Not saved: ' + (e.error || r.statusText);
    } catch (err) {
      error.textContent = 'Not saved (' + err + '); please try again.';
    }
    buttons.forEach(x => { x.disabled = false; });
  });
}
"""
_STYLE = (
    "body{font-family:sans-serif;max-width:44em;margin:2em auto;padding:0 1em}"
    "progress{width:100%;height:1.2em}audio{width:100%}"
    "button{display:block;width:100%;margin:.3em 0;padding:.6em;font-size:1em;text-align:left}"
    "#error{color:#b00020}.text{font-style:italic}"
)


class _Rater:
    """Per-request view of one rater: the order of their trials and what they answered."""

    def __init__(self, definition: TestDefinition, store: RatingStore, token: str) -> None:
        self.order = rater_order(definition, token)
        self.ids = {i.id for i in self.order}
        self.answered = store.answered(token) & self.ids

    def next_item(self) -> Item | None:
        return next((i for i in self.order if i.id not in self.answered), None)


class _Hashes:
    """sha256 of files, recomputed only when a file's size or mtime changes (thread-safe)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def __call__(self, path: str) -> str:
        st = Path(path).stat()
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._known:
                return self._known[key]
        digest = file_sha256(path)
        with self._lock:
            self._known[key] = digest
        return digest


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _page(title: str, body: str, script: str = "", status: int = 200) -> HTMLResponse:
    """A whole HTML page; ``title`` is escaped here, ``body`` must be escaped by the caller."""
    nonce = secrets.token_urlsafe(12)
    tag = f'<script nonce="{nonce}">{script}</script>' if script else ""
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}{tag}</body></html>"
    )
    headers = {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(text, status_code=status, headers=headers)


def _trial_body(definition: TestDefinition, token: str, item: Item, done: int, total: int) -> str:
    """The escaped HTML of one trial: progress, instructions, players, sentence, answer buttons."""
    e = html.escape
    base = f"/audio/{e(token)}/{e(item.id)}"
    players = ""
    if item.task == "similarity":
        players += (
            f"<p>Reference voice:</p>"
            f'<audio id="reference" controls preload="auto" src="{base}/reference.wav">'
            "</audio>"
        )
    players += (
        f'<p>Sample:</p><audio id="stimulus" controls preload="auto" src="{base}/stimulus.wav"></audio>'
    )
    text = f'<p class="text">Sentence: {e(item.text)}</p>' if definition.show_text and item.text else ""
    values = NATURALNESS_CHOICES if item.task == "naturalness" else SIMILARITY_CHOICES
    labels = _NAT_LABELS if item.task == "naturalness" else _SIM_LABELS
    buttons = "".join(
        f'<button type="button" data-answer="{e(str(v))}">{e(label)}</button>'
        for v, label in zip(values, labels, strict=True)
    )
    return (
        f'<p>Trial {done + 1} of {total}</p><progress id="progress" value="{done}" max="{total}"></progress>'
        f'<section id="trial" data-item="{e(item.id)}" data-task="{e(item.task)}" '
        f'data-post="/api/{e(token)}/answer"><p>{e(_INSTRUCTIONS[item.task])}</p>{players}{text}'
        f'<div class="choices">{buttons}</div><p id="error" role="alert"></p></section>'
    )


def _parse_answer(raw: bytes, rater: _Rater, definition: TestDefinition) -> tuple[Item, str] | str:
    """``(item, answer as stored)`` from a request body, or the reason it is refused."""
    if len(raw) > _MAX_BODY:
        return f"body larger than {_MAX_BODY} bytes"
    try:
        body: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return 'body is not JSON; send {"item": "<id>", "answer": <value>}'
    if not isinstance(body, dict) or set(body) != {"item", "answer"}:
        return 'body must be a JSON object with exactly the keys "item" and "answer"'
    item_id, answer = body["item"], body["answer"]
    item = definition.item(item_id) if isinstance(item_id, str) else None
    if item is None or item.id not in rater.ids:
        return f"item {json.dumps(item_id)[:40]} is not in this rater's test"
    if item.task == "naturalness":
        if type(answer) is not int or answer not in NATURALNESS_CHOICES:
            return f"naturalness answer must be an integer 1-5, got {json.dumps(answer)[:40]}"
    elif not isinstance(answer, str) or answer not in SIMILARITY_CHOICES:
        return (
            f"similarity answer must be one of {', '.join(SIMILARITY_CHOICES)}; got {json.dumps(answer)[:40]}"
        )
    return item, str(answer)


def create_app(folder: str | Path) -> FastAPI:
    """The app serving the test in ``folder`` (``test.json``; the store is created on first use)."""
    paths = ListenFolder(Path(folder))
    definition = load_definition(paths.definition)
    store = RatingStore(paths.database)
    hashes = _Hashes()
    app = FastAPI(title="vc listen", docs_url=None, redoc_url=None, openapi_url=None)
    forbidden = "unknown or revoked rater token"

    @app.get("/t/{token}", response_class=HTMLResponse)
    def trial_page(token: str) -> Response:
        if not store.is_active(token):
            return _page("Access denied", f"<p>{forbidden}</p>", status=403)
        rater = _Rater(definition, store, token)
        item, done, total = rater.next_item(), len(rater.answered), len(rater.order)
        if item is None:
            bar = f'<progress id="progress" value="{total}" max="{total}"></progress>'
            return _page(definition.title, f'{bar}<p id="done">All {total} trials answered. Thank you!</p>')
        return _page(definition.title, _trial_body(definition, token, item, done, total), _SCRIPT)

    @app.get("/audio/{token}/{item_id}/{which}")
    def audio(token: str, item_id: str, which: str) -> Response:
        if not store.is_active(token):
            return _error(403, forbidden)
        item = definition.item(item_id)
        if item is None or item.id not in _Rater(definition, store, token).ids:
            return _error(404, "no such item in this rater's test")
        if which not in ("stimulus.wav", "reference.wav") or (
            which == "reference.wav" and not item.reference
        ):
            return _error(404, "no such audio of this item")
        path, sha = (
            (item.stimulus, item.stimulus_sha256)
            if which == "stimulus.wav"
            else (item.reference, item.reference_sha256)
        )
        if not Path(path).is_file() or hashes(path) != sha:
            log.error("%s changed since the test was built; rebuild it (`vc listen build`)", path)
            return _error(409, "this audio changed since the test was built; please tell the experimenter")
        copy = playback_copy(path, sha, paths.playback, definition.loudness_dbfs)
        return FileResponse(copy, media_type="audio/wav", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/{token}/answer")
    async def answer(token: str, request: Request) -> Response:
        if not store.is_active(token):
            return _error(403, forbidden)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return _error(400, "Content-Type must be application/json")  # also keeps out cross-site forms
        rater = _Rater(definition, store, token)
        parsed = _parse_answer(await request.body(), rater, definition)
        if isinstance(parsed, str):
            return _error(400, parsed)
        item, value = parsed
        outcome = store.record(token, item.id, item.task, value, item.stimulus_sha256, item.reference_sha256)
        if outcome == "forbidden":
            return _error(403, forbidden)
        if outcome == "conflict":
            return _error(409, "this item was answered already with another answer; answers are final")
        done = len(rater.answered | {item.id})
        return JSONResponse({"stored": outcome == "stored", "answered": done, "total": len(rater.order)})

    @app.get("/api/{token}/progress")
    def progress(token: str) -> Response:
        if not store.is_active(token):
            return _error(403, forbidden)
        rater = _Rater(definition, store, token)
        return JSONResponse({"answered": len(rater.answered), "total": len(rater.order)})

    return app


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the test with uvicorn until interrupted. Binding anything but loopback is logged as a warning:
    the tokens travel in clear text over plain HTTP (README: use an SSH tunnel for remote raters)."""
    import uvicorn

    app = create_app(folder)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("listening on %s: reachable from other machines over plain HTTP", host)
    log.info("serving %s at http://%s:%d/t/<token>", folder, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", workers=1)
