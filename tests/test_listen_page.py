"""The listening page: rows and clips from the evaluation outputs, scores beside the right clip, escaped
names, loudness-matched copies that never touch the scored files, atomic writes; and in a real browser,
every clip loads with a duration and the filters hide rows and clips."""

from __future__ import annotations

import csv
import hashlib
import math
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import speaker_utterance

from vc.audio import PEAK_CEILING_DBFS, active_level_dbfs, match_level
from vc.errors import InputError
from vc.report.listening import PageInputs, write_listening_page

RATE = 16000
SPEAKERS = {"A": "spkA", "B": "spkB"}  # page speaker -> conftest voice
SENTENCES = {
    "s01": 'First <script>alert(1)</script> & "quoted" sentence.',
    "s02": "Second one.",
    "s03": "Third.",
}
EXPERIMENT = "exp<b>&\"'x"  # a name that must be escaped everywhere
BASELINES = ["source", "mean-var", "copy-synthesis"]
LEVELS = {"A": 0.02, "B": 0.6}  # the recordings' peak amplitudes: far apart, so matching has work to do


def _wav(path: Path, speaker: str, utt: str, scale: float, seconds: float = 0.6) -> None:
    index = int(utt[1:])
    wav = speaker_utterance(SPEAKERS[speaker], index, seconds, RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, scale * wav / np.abs(wav).max(), RATE, subtype="PCM_16")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _score(system: str, src: str, tgt: str, utt: str) -> dict[str, Any]:
    """Distinct, recognisable numbers per clip: MCD = 1 + system index + pair + sentence / 100."""
    sys_index = ["source", "mean-var", "copy-synthesis", EXPERIMENT].index(system)
    mcd = 1 + sys_index + (0.5 if src == "A" else 0.0) + int(utt[1:]) / 100
    return {
        "mcd_db": mcd,
        "cer": 0.1 * sys_index,
        "spk_sim_target": 0.5 + 0.1 * sys_index,
        "dnsmos_ovrl": 2.0 + 0.25 * sys_index,
        "asr_transcript": f"heard <i>{system}</i>",
    }


def make_inputs(root: Path) -> PageInputs:
    """A tiny evaluation tree in the formats the stages write: 2 speakers, 3 test sentences, one experiment
    (seed 0) and three baselines."""
    pairs = [("A", "B"), ("B", "A")]
    manifest, naturals = [], []
    for spk in SPEAKERS:
        for utt, text in SENTENCES.items():
            _wav(root / "corpus" / "wav" / spk / f"{utt}.wav", spk, utt, LEVELS[spk])
            manifest.append({"speaker": spk, "utt_id": utt, "split": "test", "path": f"wav/{spk}/{utt}.wav",
                             "text": text})  # fmt: skip
            naturals.append({"speaker": spk, "utt_id": utt, "text": text, "spk_sim_own": 0.95, "cer": 0.01,
                             "dnsmos_ovrl": 3.5, "asr_transcript": text})  # fmt: skip
    _write_csv(root / "corpus" / "manifest.csv", manifest)
    _write_csv(root / "references" / "perceptual" / "naturals.csv", naturals)
    items = [(s, t, u) for s, t in pairs for u in SENTENCES]
    run = root / "converted" / "experiments" / EXPERIMENT / "seed-0"
    index = []
    for s, t, u in items:
        _wav(run / f"{s}__{t}" / f"{u}.wav", t, u, 0.3)
        index.append({"source": s, "target": t, "utt_id": u, "path": f"{s}__{t}/{u}.wav"})
    _write_csv(run / "index.csv", index)
    rows = [
        {"source": s, "target": t, "utt_id": u, "seed": 0, **_score(EXPERIMENT, s, t, u)} for s, t, u in items
    ]
    _write_csv(root / "eval" / "experiments" / EXPERIMENT / "seed-0" / "scores.csv", rows)
    base = root / "converted" / "baselines"
    for s, t, u in items:
        _wav(base / "mean-var" / f"{s}__{t}" / f"{u}.wav", s, u, 0.1)
        _wav(base / "copy-synthesis" / t / f"{u}.wav", t, u, 0.9)
    evals = root / "eval" / "baselines"
    source = [
        {"source": s, "target": t, "utt_id": u, "pair": "A|B", **_score("source", s, t, u)}
        for s, t, u in items
    ]
    _write_csv(evals / "source" / "scores.csv", source)
    mean_var = [{"source": s, "target": t, "utt_id": u, **_score("mean-var", s, t, u)} for s, t, u in items]
    _write_csv(evals / "mean-var" / "scores.csv", mean_var)
    copy = [
        {"source": "-", "target": t, "utt_id": u, **_score("copy-synthesis", "-", t, u)}
        for t in SPEAKERS
        for u in SENTENCES
    ]
    _write_csv(evals / "copy-synthesis" / "scores.csv", copy)
    return PageInputs(
        root / "corpus",
        root / "references",
        root / "converted" / "experiments",
        root / "eval" / "experiments",
        base,
        evals,
    )


def write_page(inputs: PageInputs, out: Path, **overrides: Any) -> dict[str, Any]:
    kwargs = {"experiments": [EXPERIMENT], "baselines": BASELINES, "seed": 0, "sentences": 2} | overrides
    return write_listening_page(out, inputs, title="Listen <here>", **kwargs)


class _Page(HTMLParser):
    """The page's rows: ``[{pair, title, clips: [{system, audio, image, values, text}]}]``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and "item" in (a.get("class") or ""):
            self.rows.append({"pair": a["data-pair"], "title": "", "clips": []})
        elif tag == "figure":
            self.rows[-1]["clips"].append({"system": a["data-system"], "values": [], "text": ""})
        elif tag == "audio":
            self.rows[-1]["clips"][-1]["audio"] = a["src"]
        elif tag == "img" and self.rows and self.rows[-1]["clips"]:
            self.rows[-1]["clips"][-1]["image"] = a["src"]
        self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if not self.rows:
            return
        if self._in == "h2":
            self.rows[-1]["title"] += data
        elif self._in == "dd" and self.rows[-1]["clips"]:
            self.rows[-1]["clips"][-1]["values"].append(data)


def parse(page: Path) -> list[dict[str, Any]]:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.rows


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inputs(tmp_path: Path) -> PageInputs:
    return make_inputs(tmp_path / "in")


# --------------------------------------------------------------------------------------------------- tests
def test_one_row_per_sentence_and_pair_with_every_system_and_its_scores(
    inputs: PageInputs, tmp_path: Path
) -> None:
    out = tmp_path / "listen"
    summary = write_page(inputs, out)
    rows = parse(out / "index.html")
    systems = ["source (natural)", "target (natural)", EXPERIMENT, "mean-var", "copy-synthesis"]
    assert summary == {"rows": 4, "clips": 20, "systems": systems}
    assert [r["pair"] for r in rows] == ["A \u2192 B"] * 2 + ["B \u2192 A"] * 2
    assert [r["title"].split(" ")[0] for r in rows] == ["s01", "s02", "s01", "s02"]
    for row in rows:
        assert [c["system"] for c in row["clips"]] == systems
        for clip in row["clips"]:
            assert (out / clip["audio"]).is_file() and (out / clip["image"]).is_file()
            assert (out / clip["image"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the scores beside a clip are that clip's: B -> A, s02, experiment: MCD 1 + 3 + 0 + 0.02
    exp_clip = rows[3]["clips"][2]
    assert exp_clip["values"] == ["4.02", "0.300", "0.800", "2.75"]
    assert rows[0]["clips"][0]["values"][0] == "1.51"  # the source recording: the `source` baseline's MCD
    assert rows[0]["clips"][1]["values"] == ["\u2013", "0.010", "0.950", "3.50"]  # target: its natural scores
    assert rows[1]["clips"][4]["values"][0] == "3.02"  # copy-synthesis, keyed by target and sentence
    with (out / "clips.csv").open() as f:
        listed = list(csv.DictReader(f))
    assert len(listed) == 20 and len({r["copy"] for r in listed}) == 20
    assert sorted(p.name for p in out.iterdir()) == ["audio", "clips.csv", "index.html", "mel"]
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # offline: nothing fetched from anywhere


def test_pairs_and_sentences_are_selected_and_bad_choices_are_named(
    inputs: PageInputs, tmp_path: Path
) -> None:
    summary = write_page(inputs, tmp_path / "one", pairs=[("B", "A")], sentences=5)
    rows = parse(tmp_path / "one" / "index.html")
    assert summary["rows"] == 3 and {r["pair"] for r in rows} == {"B \u2192 A"}
    write_page(inputs, tmp_path / "two", baselines=["mean-var"], sentences=1)
    rows = parse(tmp_path / "two" / "index.html")
    assert [c["system"] for c in rows[0]["clips"]][2:] == [EXPERIMENT, "mean-var"]
    # without the `source` baseline the source recording has its own scores only: no MCD, no similarity
    assert rows[0]["clips"][0]["values"] == ["\u2013", "0.010", "\u2013", "3.50"]
    with pytest.raises(InputError, match=r"A->C were not converted \(converted: A->B, B->A\)"):
        write_page(inputs, tmp_path / "bad", pairs=[("A", "C")])
    with pytest.raises(InputError, match="sentences must be at least 1"):
        write_page(inputs, tmp_path / "bad", sentences=0)
    with pytest.raises(InputError, match=r"seed-1/index.csv: no conversion index"):
        write_page(inputs, tmp_path / "bad", seed=1)
    assert not (tmp_path / "bad").exists()


def test_every_name_and_text_is_escaped(inputs: PageInputs, tmp_path: Path) -> None:
    write_page(inputs, tmp_path / "listen")
    page = (tmp_path / "listen" / "index.html").read_text()
    assert (
        "<script>alert(1)" not in page
        and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    )
    assert EXPERIMENT not in page and "exp&lt;b&gt;&amp;&quot;&#x27;x" in page
    assert "<i>" not in page and "heard &lt;i&gt;mean-var&lt;/i&gt;" in page
    assert "<title>Listen &lt;here&gt;</title>" in page
    assert page.count("<script>") == 1  # only the page's own filter code


def test_copies_are_loudness_matched_and_the_scored_files_untouched(
    inputs: PageInputs, tmp_path: Path
) -> None:
    root = inputs.corpus.parent
    scored = sorted(p for p in root.rglob("*.wav"))
    before = {p: _sha(p) for p in scored}
    out = tmp_path / "listen"
    write_page(inputs, out, level_dbfs=-30.0)
    assert {p: _sha(p) for p in scored} == before
    with (out / "clips.csv").open() as f:
        listed = list(csv.DictReader(f))
    levels = []
    for row in listed:
        wav, rate = sf.read(out / row["copy"])
        level = active_level_dbfs(wav, rate)
        levels.append(level)
        assert 20 * np.log10(np.abs(wav).max()) <= PEAK_CEILING_DBFS + 0.01
        if row["peak_limited"] == "0":
            assert level == pytest.approx(-30.0, abs=0.05), row
        original, _ = sf.read(row["scored_file"])
        gain = 10 ** (float(row["gain_db"]) / 20)
        np.testing.assert_allclose(wav, original * gain, atol=2 / 32768)  # one gain, nothing else
    assert max(levels) - min(levels) < 0.1  # the recordings were 29.5 dB apart
    page = (out / "index.html").read_text()
    assert "active level is -30 dBFS" in page and "untouched" in page


def test_match_level_hits_the_target_and_respects_the_peak_ceiling() -> None:
    t = np.arange(RATE) / RATE
    sine = 0.1 * np.sin(2 * np.pi * 440 * t)
    assert active_level_dbfs(sine, RATE) == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.01)
    out = match_level(sine, RATE, -20.0)
    assert not out.limited and active_level_dbfs(out.wav, RATE) == pytest.approx(-20.0, abs=0.01)
    clicks = np.zeros(RATE)
    clicks[::4000] = 0.01  # a crest factor no gain can bring to -10 dBFS below a -1 dBFS peak
    limited = match_level(clicks, RATE, -10.0)
    assert limited.limited and np.abs(limited.wav).max() == pytest.approx(10 ** (PEAK_CEILING_DBFS / 20))
    assert limited.level_dbfs < -10.0
    silent = match_level(np.zeros(100), RATE, -20.0)
    assert silent.gain_db == 0.0 and not np.any(silent.wav)


def test_a_failed_write_keeps_the_previous_page(inputs: PageInputs, tmp_path: Path) -> None:
    out = tmp_path / "listen"
    write_page(inputs, out)
    before = (out / "index.html").read_text()
    (inputs.converted_baselines / "mean-var" / "A__B" / "s01.wav").unlink()
    with pytest.raises(InputError, match=r"mean-var/A__B/s01.wav: no such audio file"):
        write_page(inputs, out)
    assert (out / "index.html").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    scores = inputs.eval_baselines / "copy-synthesis" / "scores.csv"
    scores.write_text(scores.read_text().splitlines()[0] + "\n")
    with pytest.raises(InputError, match=r"copy-synthesis/scores.csv: no scores of A->B s01"):
        write_page(inputs, tmp_path / "other")


def test_stage_reads_its_params_and_takes_every_path(
    inputs: PageInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.listen_page as stage

    params = SimpleNamespace(
        experiments={EXPERIMENT: None},
        baselines=BASELINES,
        seeds=[0, 1],
        report=SimpleNamespace(title="T"),
        listen_page=SimpleNamespace(sentences=1, pairs=[["A", "B"]], seed=None, level_dbfs=-24.0),
    )
    monkeypatch.setattr(stage, "read_params", lambda path: params)
    out = tmp_path / "listen"
    argv = [
        f"--corpus={inputs.corpus}",
        f"--references={inputs.references}",
        f"--converted-experiments={inputs.converted_experiments}",
        f"--eval-experiments={inputs.eval_experiments}",
        f"--converted-baselines={inputs.converted_baselines}",
        f"--eval-baselines={inputs.eval_baselines}",
        f"--out={out}",
    ]
    stage.main(argv)
    rows = parse(out / "index.html")
    assert len(rows) == 1 and rows[0]["pair"] == "A \u2192 B"
    assert "<title>T: listening page</title>" in (out / "index.html").read_text()
    params.listen_page.seed = 7
    with pytest.raises(SystemExit) as err:
        stage.main(argv)
    assert err.value.code == 2
    with pytest.raises(SystemExit):
        stage.main(argv[:-1])  # --out missing: argparse stops


def test_in_the_browser_every_clip_loads_and_the_filters_hide(
    chrome: Any, inputs: PageInputs, tmp_path: Path
) -> None:
    from browser import audio_states, file_url, wait_until  # imported once pytest has loaded the plugin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out = tmp_path / "listen"
    write_page(inputs, out)
    chrome.get(file_url(out / "index.html"))
    states = audio_states(chrome)
    assert len(states) == 20
    for s in states:
        assert s["error"] is None and s["duration"] is not None and 0.5 < s["duration"] < 0.7, s

    def visible(selector: str) -> int:
        return sum(e.is_displayed() for e in chrome.find_elements(By.CSS_SELECTOR, selector))

    assert visible("section.item") == 4
    Select(chrome.find_element(By.ID, "pair-filter")).select_by_visible_text("B \u2192 A")
    wait_until(lambda: visible("section.item") == 2, 5, what="the pair filter")
    rows = [e for e in chrome.find_elements(By.CSS_SELECTOR, "section.item") if e.is_displayed()]
    assert all(r.get_attribute("data-pair") == "B \u2192 A" for r in rows)
    assert chrome.find_element(By.ID, "shown").text == "2"
    box = next(
        b
        for b in chrome.find_elements(By.CSS_SELECTOR, "input.system-filter")
        if b.get_attribute("value") == EXPERIMENT
    )
    box.click()
    wait_until(lambda: visible("figure.clip") == 2 * 4, 5, what="the system filter")
    assert all(
        f.get_attribute("data-system") != EXPERIMENT
        for f in chrome.find_elements(By.CSS_SELECTOR, "figure.clip")
        if f.is_displayed()
    )
    chrome.find_element(By.ID, "all-systems").click()
    Select(chrome.find_element(By.ID, "pair-filter")).select_by_index(0)
    wait_until(lambda: visible("figure.clip") == 20, 5, what="every clip shown again")
