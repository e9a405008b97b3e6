"""The listening test (`vc listen`): test definition, loudness matching, the web app against a real uvicorn
server (bad input, idempotence, escaping, reload), 20 raters at once, a killed server, the CLI, and the
ratings analysis. Tiny synthetic wavs in tmp_path; no run's folders are read."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf
from browser import free_port, wait_until
from conftest import ROOT, project_env, speaker_utterance, write_wav

from vc.audio import active_level_dbfs
from vc.errors import InputError
from vc.listen.cli import main as listen_main
from vc.listen.playback import playback_copy
from vc.listen.protocol import (
    build_definition,
    file_sha256,
    load_definition,
    rater_order,
    save_definition,
)
from vc.listen.ratings import analyse_ratings, read_ratings
from vc.listen.store import ListenFolder, RatingStore, export_ratings
from vc.statistics import cluster_bootstrap_mean

SPEAKERS = ("spkA", "spkB")
UTTS = ("u1", "u2", "u3")
EVIL = '<script>alert("x")</script> & <b>bold</b>'


def make_run(
    root: Path, seconds: float = 0.25, text: str = "A plain sentence.", speakers: tuple[str, ...] = SPEAKERS
) -> dict[str, Path]:
    """A run's folders in miniature: two experiments (seed 0), a per-pair and a per-target baseline, and a
    corpus of natural recordings: 2 speakers x 3 sentences, both pairs, sentences u1 and u2 converted."""
    corpus, exps, bases = (
        root / "corpus",
        root / "converted" / "experiments",
        root / "converted" / "baselines",
    )
    rows = [("speaker", "utt_id", "split", "path", "status", "text")]
    for k, spk in enumerate(speakers):
        for i, utt in enumerate(UTTS):
            write_wav(corpus / spk / f"{utt}.wav", speaker_utterance(spk, i, seconds))
            rows.append((spk, utt, "test", f"{spk}/{utt}.wav", "ok", f"{text} {k}{i}"))
    with (corpus / "manifest.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    for src, tgt in [(s, t) for s in speakers for t in speakers if s != t]:
        for i, utt in enumerate(UTTS[:2]):
            for g, folder in enumerate(
                (exps / "expA" / "seed-0", exps / "expB" / "seed-0", bases / "mean-var")
            ):
                wav = speaker_utterance(tgt, i, seconds) * (0.2 + 0.3 * g)  # different levels
                write_wav(folder / f"{src}__{tgt}" / f"{utt}.wav", wav)
            write_wav(bases / "copy-synthesis" / tgt / f"{utt}.wav", 0.1 * speaker_utterance(tgt, i, seconds))
    return {"corpus": corpus, "experiments": exps, "baselines": bases}


def make_test(
    root: Path, per_rater: int | None = None, text: str = "A plain sentence.", **kw
) -> ListenFolder:
    """A built test in ``root/test``."""
    run = make_run(root / "run", text=text)
    definition = build_definition(
        run["experiments"], run["corpus"], baselines_dir=run["baselines"], per_rater=per_rater, **kw
    )
    folder = ListenFolder(root / "test")
    save_definition(definition, folder.definition)
    return folder


@contextlib.contextmanager
def thread_server(folder: ListenFolder) -> Iterator[str]:
    """The app on a real uvicorn server in a thread on a free loopback port; yields its URL."""
    import uvicorn

    from vc.listen.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(folder.root), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def process_server(folder: ListenFolder) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m vc.listen.cli serve` in a subprocess (what `vc listen serve` runs); yields URL, process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vc.listen.cli", "serve", "--folder", str(folder.root), "--port", str(port)],
        cwd=ROOT,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: proc.poll() is not None or requests.get(f"{url}/t/x", timeout=2).status_code,
            60,
            what="server",
        )
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()


def stored(folder: ListenFolder) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(folder.database)) as db:
        return db.execute(
            "SELECT token, item_id, answer, audio_sha256 FROM answers ORDER BY token, item_id"
        ).fetchall()


def valid_answer(task: str, k: int = 0) -> int | str:
    return (1 + k % 5) if task == "naturalness" else ("same-sure", "different-not-sure")[k % 2]


# ------------------------------------------------------------------------------------------- definition
def test_definition_reads_the_run_folders(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    d = build_definition(run["experiments"], run["corpus"], baselines_dir=run["baselines"])
    names = {s.name: s for s in d.systems}
    assert set(names) == {"expA", "expB", "mean-var", "copy-synthesis", "natural", "source"}
    assert {names[n].kind for n in ("expA", "expB")} == {"experiment"}
    assert names["natural"].kind == "natural" and names["mean-var"].kind == "baseline"
    assert all(s.id.startswith("S") and s.name not in s.id for s in d.systems)  # blind ids
    nat = [i for i in d.items if i.task == "naturalness"]
    sim = [i for i in d.items if i.task == "similarity"]
    assert len(nat) == 5 * 4 and len(sim) == 6 * 4  # 2 pairs x 2 sentences; source only in similarity
    assert names["source"].id not in {i.system for i in nat}
    natural = [i for i in nat if i.system == names["natural"].id]
    assert {(Path(i.stimulus).parent.name, Path(i.stimulus).stem) for i in natural} == {
        (t, u) for t in SPEAKERS for u in ("u1", "u2")
    }  # the hidden reference: the target's own recording of the sentence
    for item in sim:
        ref = Path(item.reference)
        assert ref.parent.name == item.target and ref.stem == "u3"  # a different sentence, not in the test
        assert item.reference_sha256 == file_sha256(ref)
    assert all(i.stimulus_sha256 == file_sha256(i.stimulus) for i in d.items)
    assert len({i.id for i in d.items}) == len(d.items)
    same = build_definition(run["experiments"], run["corpus"], similarity_reference="same")
    assert all(Path(i.reference).stem == i.utt_id for i in same.items if i.task == "similarity")


def test_every_trial_is_distinct_with_three_speakers(tmp_path: Path) -> None:
    run = make_run(tmp_path, speakers=("spkA", "spkB", "spkC"))
    d = build_definition(run["experiments"], run["corpus"], baselines_dir=run["baselines"])
    trials = [(i.task, i.system, i.stimulus, i.reference) for i in d.items]
    assert len(trials) == len(set(trials))  # B's own recording is one trial, not one per source speaker
    natural = next(s.id for s in d.systems if s.name == "natural")
    assert len([i for i in d.items if i.system == natural]) == 2 * 3 * 2  # tasks x targets x sentences
    assert len([i for i in d.items if i.task == "naturalness"]) == 3 * 6 * 2 + 2 * 3 * 2


def test_definition_selection_and_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    d = build_definition(
        run["experiments"], run["corpus"], pairs=[("spkB", "spkA")], sentences=1, experiments=["expB"]
    )
    assert {(i.source, i.target, i.utt_id) for i in d.items} == {("spkB", "spkA", "u1")}
    assert {s.name for s in d.systems} == {"expB", "natural", "source"}
    with pytest.raises(InputError, match="seed-3"):
        build_definition(run["experiments"], run["corpus"], experiments=["expA"], seed=3)
    with pytest.raises(InputError, match="spkA__spkC"):
        build_definition(run["experiments"], run["corpus"], pairs=[("spkA", "spkC")])
    with pytest.raises(InputError, match="baseline 'nope'"):
        build_definition(
            run["experiments"], run["corpus"], baselines_dir=run["baselines"], baselines=["nope"]
        )
    with pytest.raises(InputError, match="manifest"):
        build_definition(run["experiments"], tmp_path / "nowhere")


def test_definition_round_trip_and_rater_order(tmp_path: Path) -> None:
    folder = make_test(tmp_path, per_rater=3)
    d = load_definition(folder.definition)
    again = build_definition(tmp_path / "run/converted/experiments", tmp_path / "run/corpus",
                             baselines_dir=tmp_path / "run/converted/baselines", per_rater=3)  # fmt: skip
    assert [i.id for i in d.items] == [i.id for i in again.items]  # stable ids across rebuilds
    first, other = rater_order(d, "token-1"), rater_order(d, "token-2")
    assert [i.id for i in first] == [i.id for i in rater_order(d, "token-1")]  # a reload: the same order
    assert [i.id for i in first] != [i.id for i in other]
    assert [i.task for i in first] == ["naturalness"] * 3 + ["similarity"] * 3
    saved = json.loads(folder.definition.read_text())["items"][0]
    assert saved["stimulus"].startswith("../run/") and saved["reference"] == ""
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("run", "test"):
        (tmp_path / name).rename(moved / name)  # a test folder and its run move together
    assert all(Path(i.stimulus).is_file() for i in load_definition(moved / "test" / "test.json").items)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json"):
        load_definition(tmp_path / "bad.json")


def test_playback_copies_are_loudness_matched_and_originals_untouched(tmp_path: Path) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", 0.02 * speaker_utterance("spkA", 0, 0.5))
    loud = write_wav(tmp_path / "loud.wav", 0.9 * speaker_utterance("spkB", 1, 0.5))
    before = {p: file_sha256(p) for p in (quiet, loud)}
    levels = []
    for p in (quiet, loud):
        copy = playback_copy(p, before[p], tmp_path / "cache", -26.0)
        wav, rate = sf.read(copy)
        levels.append(active_level_dbfs(wav, rate))
        assert np.max(np.abs(wav)) <= 10 ** (-1 / 20) + 1e-3
    assert levels == pytest.approx([-26.0, -26.0], abs=0.3)
    assert {p: file_sha256(p) for p in (quiet, loud)} == before


# ------------------------------------------------------------------------------------------------- app
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ListenFolder]]:
    folder = make_test(tmp_path_factory.mktemp("listen"), per_rater=2, text=EVIL, title=f"Test {EVIL}")
    with thread_server(folder) as url:
        yield url, folder


def test_page_audio_and_reload_continue(served: tuple[str, ListenFolder]) -> None:
    url, folder = served
    token = RatingStore(folder.database).invite(1)[0]
    order = rater_order(load_definition(folder.definition), token)
    page = requests.get(f"{url}/t/{token}", timeout=10)
    assert page.status_code == 200 and f'data-item="{order[0].id}"' in page.text
    assert '<progress id="progress" value="0" max="4">' in page.text
    audio = requests.get(f"{url}/audio/{token}/{order[0].id}/stimulus.wav", timeout=10)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert requests.get(f"{url}/audio/{token}/{order[2].id}/reference.wav", timeout=10).status_code == 200
    for k, item in enumerate(order):
        r = requests.post(
            f"{url}/api/{token}/answer", json={"item": item.id, "answer": valid_answer(item.task, k)}
        )
        assert r.status_code == 200 and r.json() == {"stored": True, "answered": k + 1, "total": 4}
        page = requests.get(f"{url}/t/{token}", timeout=10).text  # what a reload shows
        if k + 1 < len(order):
            assert f'data-item="{order[k + 1].id}"' in page and f'value="{k + 1}" max="4"' in page
    assert 'id="done"' in page
    assert len([r for r in stored(folder) if r[0] == token]) == 4


def test_texts_are_escaped(served: tuple[str, ListenFolder]) -> None:
    url, folder = served
    token = RatingStore(folder.database).invite(1)[0]
    page = requests.get(f"{url}/t/{token}", timeout=10).text
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("<script") == 1  # only the page's own script, with its nonce
    assert "stimulus.wav" in page and "spkA" not in page and "expA" not in page  # no file or system names


@pytest.mark.parametrize("token_state", ["unknown", "revoked"])
def test_bad_tokens_get_403_and_store_nothing(served: tuple[str, ListenFolder], token_state: str) -> None:
    url, folder = served
    store = RatingStore(folder.database)
    token = "not-a-token"
    if token_state == "revoked":
        token = store.invite(1)[0]
        store.revoke(token)
    item = rater_order(load_definition(folder.definition), token)[0]
    before = stored(folder)
    assert requests.get(f"{url}/t/{token}", timeout=10).status_code == 403
    assert requests.get(f"{url}/audio/{token}/{item.id}/stimulus.wav", timeout=10).status_code == 403
    assert requests.get(f"{url}/api/{token}/progress", timeout=10).status_code == 403
    r = requests.post(f"{url}/api/{token}/answer", json={"item": item.id, "answer": 3}, timeout=10)
    assert r.status_code == 403 and "revoked" in r.json()["error"]
    assert stored(folder) == before


BAD_BODIES = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "exactly the keys"),
    (b'{"item": "@NAT"}', "exactly the keys"),
    (b'{"item": "@NAT", "answer": 3, "extra": 1}', "exactly the keys"),
    (b'{"item": "@NAT", "answer": 0}', "integer 1-5"),
    (b'{"item": "@NAT", "answer": 6}', "integer 1-5"),
    (b'{"item": "@NAT", "answer": 3.5}', "integer 1-5"),
    (b'{"item": "@NAT", "answer": "3"}', "integer 1-5"),
    (b'{"item": "@NAT", "answer": true}', "integer 1-5"),
    (b'{"item": "@NAT", "answer": null}', "integer 1-5"),
    (b'{"item": "@SIM", "answer": "maybe"}', "similarity answer"),
    (b'{"item": "@SIM", "answer": 2}', "similarity answer"),
    (b'{"item": "nope", "answer": 3}', "not in this rater's test"),
    (b'{"item": 7, "answer": 3}', "not in this rater's test"),
    (b'{"item": "@OTHER", "answer": 3}', "not in this rater's test"),
    (b'{"item": "@NAT", "answer": 3, "pad": "' + b"x" * 5000 + b'"}', "larger than"),
]


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES, ids=[r for _, r in BAD_BODIES])
def test_bad_answers_get_400_and_store_nothing(
    served: tuple[str, ListenFolder], body: bytes, reason: str
) -> None:
    url, folder = served
    token = RatingStore(folder.database).invite(1)[0]
    definition = load_definition(folder.definition)
    order = rater_order(definition, token)
    other = next(i for i in definition.items if i.id not in {o.id for o in order})
    body = body.replace(b"@NAT", order[0].id.encode()).replace(b"@SIM", order[2].id.encode())
    body = body.replace(b"@OTHER", other.id.encode())
    before = stored(folder)
    r = requests.post(f"{url}/api/{token}/answer", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and reason in r.json()["error"]
    assert stored(folder) == before


def test_answers_must_be_sent_as_json(served: tuple[str, ListenFolder]) -> None:
    url, folder = served
    token = RatingStore(folder.database).invite(1)[0]
    item = rater_order(load_definition(folder.definition), token)[0]
    before = stored(folder)
    body = json.dumps({"item": item.id, "answer": 3})
    r = requests.post(f"{url}/api/{token}/answer", data=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "application/json" in r.json()["error"]
    assert stored(folder) == before


def test_repeated_submission_is_idempotent(served: tuple[str, ListenFolder]) -> None:
    url, folder = served
    token = RatingStore(folder.database).invite(1)[0]
    item = rater_order(load_definition(folder.definition), token)[0]
    replies = [
        requests.post(f"{url}/api/{token}/answer", json={"item": item.id, "answer": 4}) for _ in range(3)
    ]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.json()["stored"] for r in replies] == [True, False, False]
    changed = requests.post(f"{url}/api/{token}/answer", json={"item": item.id, "answer": 2})
    assert changed.status_code == 409 and "final" in changed.json()["error"]
    assert [r[2] for r in stored(folder) if r[0] == token] == ["4"]


# ---------------------------------------------------------------------------------- real-server stress
def answer_all(
    url: str, token: str, items: list, acked: list | None = None, enough: threading.Event | None = None
) -> list[int]:
    """One rater answering their items in order; returns the status codes (acknowledged ones to ``acked``)."""
    codes = []
    with requests.Session() as s:
        for k, item in enumerate(items):
            r = s.post(
                f"{url}/api/{token}/answer",
                json={"item": item.id, "answer": valid_answer(item.task, k)},
                timeout=30,
            )
            codes.append(r.status_code)
            if r.status_code == 200 and acked is not None:
                acked.append((token, item.id))
                if enough is not None and len(acked) >= 30:
                    enough.set()
    return codes


def test_twenty_raters_at_once_lose_no_answer(tmp_path: Path) -> None:
    folder = make_test(tmp_path, per_rater=3)
    definition = load_definition(folder.definition)
    tokens = RatingStore(folder.database).invite(20)
    results: dict[str, list[int]] = {}
    with process_server(folder) as (url, _):
        start = threading.Barrier(len(tokens))

        def rater(token: str) -> None:
            start.wait(timeout=30)
            results[token] = answer_all(url, token, rater_order(definition, token))

        threads = [threading.Thread(target=rater, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert all(codes == [200] * 6 for codes in results.values()) and len(results) == 20
    rows = stored(folder)
    assert len(rows) == 20 * 6
    assert {(r[0], r[1]) for r in rows} == {(t, i.id) for t in tokens for i in rater_order(definition, t)}
    out = export_ratings(RatingStore(folder.database), definition, folder=folder.exports)
    assert len(list(csv.DictReader(out.open()))) == 120


def test_a_killed_server_loses_nothing_acknowledged(tmp_path: Path) -> None:
    folder = make_test(tmp_path)
    definition = load_definition(folder.definition)
    tokens = RatingStore(folder.database).invite(4)
    acked: list[tuple[str, str]] = []
    enough = threading.Event()
    with process_server(folder) as (url, proc):

        def rater(token: str) -> None:
            with contextlib.suppress(requests.RequestException):
                answer_all(url, token, rater_order(definition, token), acked, enough)

        threads = [threading.Thread(target=rater, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        assert enough.wait(timeout=60), "30 answers were not acknowledged"
        os.kill(proc.pid, signal.SIGKILL)  # mid-test: the raters are still answering
        for t in threads:
            t.join(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    total = len(tokens) * len(definition.items)
    assert 30 <= len(acked) < total, "the kill came after the test ended: it proves nothing"
    assert set(acked) <= {(r[0], r[1]) for r in stored(folder)}
    with process_server(folder) as (url, _):  # restarted: each rater continues where they stopped
        for token in tokens:
            done = requests.get(f"{url}/api/{token}/progress", timeout=10).json()["answered"]
            assert done == len([r for r in stored(folder) if r[0] == token])


# ------------------------------------------------------------------------------------------- CLI, export
def test_cli_build_invite_revoke_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run")
    folder = tmp_path / "test"
    build = ["build", "--folder", str(folder), "--converted", str(run["experiments"]),
             "--corpus", str(run["corpus"]), "--baselines", str(run["baselines"]),
             "--pairs", "spkA:spkB", "--sentences", "1"]  # fmt: skip
    listen_main(build)
    with pytest.raises(SystemExit) as stop:
        listen_main(build)  # an existing test is never silently rebuilt
    assert stop.value.code == 2
    capsys.readouterr()
    listen_main(["invite", "--folder", str(folder), "--n", "3", "--base-url", "http://example.test/"])
    links = capsys.readouterr().out.split()
    assert len(links) == 3 and all(link.startswith("http://example.test/t/") for link in links)
    tokens = [link.rsplit("/", 1)[1] for link in links]
    store = RatingStore(ListenFolder(folder).database)
    item = rater_order(load_definition(folder / "test.json"), tokens[1])[0]
    assert store.record(tokens[0], item.id, item.task, "2", item.stimulus_sha256, "") == "stored"
    listen_main(["revoke", "--folder", str(folder), tokens[0]])
    assert not store.is_active(tokens[0]) and store.is_active(tokens[1])
    assert store.record(tokens[0], "x", item.task, "3", item.stimulus_sha256, "") == "forbidden"
    assert store.record("nobody", item.id, item.task, "3", item.stimulus_sha256, "") == "forbidden"
    assert store.record(tokens[1], item.id, item.task, "5", item.stimulus_sha256, "") == "stored"
    listen_main(["export", "--folder", str(folder), "--format", "jsonl"])
    out = Path(capsys.readouterr().out.strip())
    assert out.parent == folder / "exports" and out.name.startswith("ratings-") and out.suffix == ".jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    got = sorted((r["rater"], r["item_id"], r["answer"]) for r in rows)
    assert got == sorted([(tokens[0], item.id, "2"), (tokens[1], item.id, "5")])  # a revoked rater's kept
    assert rows[0]["answered_at"] and rows[0]["audio_sha256"] == item.stimulus_sha256
    with pytest.raises(SystemExit):
        listen_main(["export", "--folder", str(folder), "--out", str(out)])  # never overwritten
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


# --------------------------------------------------------------------------------------------- ratings
def rate(
    folder: ListenFolder, scores: dict[str, float], n_raters: int = 4, natural_low: int = 0
) -> list[str]:
    """Raters answering every item: naturalness ``scores[system] + noise`` (rounded into 1-5), similarity
    "same" with probability ``(score - 1) / 4``; the first ``natural_low`` raters rate the natural one 1.
    Written in one transaction (the app's one-commit-per-answer path is tested above)."""
    definition = load_definition(folder.definition)
    tokens = RatingStore(folder.database).invite(n_raters)
    rng = np.random.default_rng(0)
    rows = []
    for r, token in enumerate(tokens):
        for item in definition.items:
            name = definition.system(item.system).name
            mu = 1.0 if (r < natural_low and name == "natural") else scores[name]
            if item.task == "naturalness":
                answer = str(int(np.clip(round(mu + rng.normal(0, 0.5)), 1, 5)))
            else:
                answer = "same-sure" if rng.random() < (mu - 1) / 4 else "different-sure"
            rows.append((token, item.id, item.task, answer, item.stimulus_sha256, item.reference_sha256))
    with contextlib.closing(sqlite3.connect(folder.database)) as db, db:
        db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, datetime('now'))", rows)
    return tokens


SCORES = {"expA": 4.0, "expB": 3.0, "mean-var": 2.0, "copy-synthesis": 4.5, "natural": 5.0, "source": 1.0}


def test_ratings_analysis(tmp_path: Path) -> None:
    folder = make_test(tmp_path)
    definition = load_definition(folder.definition)
    tokens = rate(folder, SCORES, natural_low=1)
    store = RatingStore(folder.database)
    first = export_ratings(store, definition, folder=folder.exports)
    second = export_ratings(store, definition, folder=folder.exports, fmt="jsonl")
    a = analyse_ratings([first, second], definition, reference="mean-var", n_resamples=200)
    assert a.n_duplicate == a.n_used and a.n_stale == a.n_unknown == a.n_excluded == 0
    by = {s.name: s for s in a.systems}
    assert by["natural"].naturalness.mean > by["expA"].naturalness.mean > by["mean-var"].naturalness.mean
    for s in a.systems:
        if s.naturalness.n:
            assert s.naturalness.low <= s.naturalness.mean <= s.naturalness.high
            assert s.naturalness.raters == 4 and s.naturalness.sentences == 2
    assert by["source"].naturalness.n == 0 and by["source"].similarity.mean < by["natural"].similarity.mean
    rows = read_ratings([first])  # the same routine as the objective metrics, raters as the second cluster
    rows = rows[
        rows["item_id"].isin(
            [i.id for i in definition.items if i.task == "naturalness" and i.system == by["expA"].system_id]
        )
    ]
    sentences = [definition.item(i).utt_id for i in rows["item_id"]]
    direct = cluster_bootstrap_mean(rows["answer"].astype(float), sentences, rows["rater"], n_resamples=200)
    assert (by["expA"].naturalness.low, by["expA"].naturalness.high) == (direct.low, direct.high)
    diff = {(d.task, d.system, d.other): d for d in a.differences}
    assert diff[("naturalness", "expA", "mean-var")].verdict.startswith("better by")
    assert diff[("naturalness", "expA", "mean-var")].diff.mean == pytest.approx(2.0, abs=0.5)
    assert ("naturalness", "expA", "expB") in diff and ("similarity", "expA", "expB") in diff
    low = [r for r in a.raters if r.low]
    assert [r.rater for r in low] == [tokens[0]] and not low[0].excluded and low[0].natural_mos < 3.0
    b = analyse_ratings([first], definition, exclude_low_raters=True, n_resamples=200)
    assert b.n_excluded == a.n_used // 4 and {s.name: s for s in b.systems}["natural"].naturalness.raters == 3
    empty = analyse_ratings([], definition)  # no ratings yet: nothing used, nothing compared
    assert empty.n_used == 0 and not empty.differences and math.isnan(empty.systems[0].naturalness.mean)
    with pytest.raises(InputError, match="'nope'"):
        analyse_ratings([first], definition, reference="nope")


def test_ratings_of_changed_audio_are_stale(tmp_path: Path) -> None:
    folder = make_test(tmp_path)
    definition = load_definition(folder.definition)
    rate(folder, SCORES, n_raters=2)
    out = export_ratings(RatingStore(folder.database), definition, folder=folder.exports)
    changed = next(
        i for i in definition.items if i.task == "naturalness" and definition.system(i.system).name == "expA"
    )
    write_wav(Path(changed.stimulus), 0.3 * speaker_utterance("spkA", 2, 0.25))  # the conversion was re-run
    a = analyse_ratings([out], definition, n_resamples=100)
    assert a.n_stale == 2 * 2 and a.n_unknown == 0  # its naturalness and similarity trials, by 2 raters
    assert a.n_used == 2 * len(definition.items) - 4
    bad = tmp_path / "bad.csv"
    bad.write_text(
        out.read_text()
        .replace(",naturalness,", ",naturalness,,", 1)
        .replace(",naturalness,,", ",naturalness,9,", 1)
    )
    with pytest.raises(InputError, match=r"bad\.csv"):
        analyse_ratings([bad], definition)
