"""The test definition: which stimuli a listening test plays, read from a run's folders.

The Voice Conversion Challenge protocol has two tasks:

- ``naturalness``: one clip, rated 1 (completely unnatural) to 5 (completely natural). The target speaker's
  natural recording of the same sentence is among the clips as a hidden reference (system ``natural``).
- ``similarity``: a clip beside the target speaker's natural recording (of a different sentence by default,
  ``similarity_reference="same"`` for the same one): "same speaker" or "different speaker", each "sure" or
  "not sure". The natural target recording is the hidden upper anchor, the untouched source recording
  (system ``source``) the lower one.

Folders read (the layout of :mod:`vc.layout` and ``dvc.yaml``): ``<experiments>/<experiment>/seed-<seed>/
<source>__<target>/<utt>.wav`` (stage ``convert``), ``<baselines>/<name>/<source>__<target>/<utt>.wav`` or
``<baselines>/<name>/<target>/<utt>.wav`` (stage ``baselines``; per-target baselines never see the source),
and ``<corpus>/manifest.csv`` with the natural recordings (stage ``corpus``).

Each item records the sha256 of its audio files, so a rating can later be matched to exactly the audio
that was heard (:mod:`vc.listen.ratings` leaves out ratings whose file changed since).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from vc.errors import InputError
from vc.io import write_json
from vc.layout import run_dir

__all__ = [
    "NATURALNESS_CHOICES",
    "SIMILARITY_CHOICES",
    "Item",
    "System",
    "TestDefinition",
    "build_definition",
    "file_sha256",
    "load_definition",
    "rater_order",
    "save_definition",
]

Task = Literal["naturalness", "similarity"]
NATURALNESS_CHOICES = (1, 2, 3, 4, 5)
#: Similarity answers, as stored; the first two count as "same speaker".
SIMILARITY_CHOICES = ("same-sure", "same-not-sure", "different-not-sure", "different-sure")
FORMAT_VERSION = 1
Key = tuple[str, str, str]  # (source, target, utt_id)


@dataclass(frozen=True)
class System:
    """One system of the test: ``id`` is the opaque name used everywhere a rater could see it."""

    id: str
    name: str  # experiment name, baseline name, "natural" or "source"
    kind: Literal["experiment", "baseline", "natural", "source"]


@dataclass(frozen=True)
class Item:
    """One trial: a stimulus (and for similarity the target's natural reference) with their sha256."""

    id: str
    task: Task
    system: str  # System.id
    source: str
    target: str
    utt_id: str
    text: str
    stimulus: str
    stimulus_sha256: str
    reference: str = ""
    reference_sha256: str = ""


@dataclass(frozen=True)
class TestDefinition:
    """Everything the app serves and the analysis matches ratings against."""

    title: str
    seed: int  # the training seed of the experiments' conversions
    systems: tuple[System, ...]
    items: tuple[Item, ...]
    per_rater: int | None = None  # trials per task per rater (None: all)
    show_text: bool = True
    similarity_reference: Literal["different", "same"] = "different"
    loudness_dbfs: float = -26.0
    version: int = FORMAT_VERSION
    _by_id: dict[str, Item] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({i.id: i for i in self.items})

    def item(self, item_id: str) -> Item | None:
        return self._by_id.get(item_id)

    def system(self, system_id: str) -> System:
        return next(s for s in self.systems if s.id == system_id)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _item_id(task: str, system: str, key: Key) -> str:
    """A stable, opaque id: the same trial keeps its id when the test is rebuilt."""
    return hashlib.sha256("|".join((task, system, *key)).encode()).hexdigest()[:12]


def _natural_recordings(corpus: Path) -> dict[tuple[str, str], tuple[Path, str]]:
    """``(speaker, utt_id) -> (wav, text)`` of the corpus manifest's usable recordings."""
    from vc.corpus.build import read_manifest

    manifest = read_manifest(corpus / "manifest.csv")
    if "status" in manifest.columns:
        manifest = manifest[manifest["status"].isin(["ok", ""])]
    texts = manifest["text"] if "text" in manifest.columns else [""] * len(manifest)
    found = {}
    for spk, utt, rel, text in zip(
        manifest["speaker"], manifest["utt_id"], manifest["path"], texts, strict=True
    ):
        if rel and (corpus / rel).is_file():
            found[(str(spk), str(utt))] = (corpus / rel, str(text))
    return found


def _pair_wavs(folder: Path) -> dict[Key, Path]:
    """``(source, target, utt) -> wav`` of a folder of ``<source>__<target>/<utt>.wav``."""
    out = {}
    for wav in sorted(folder.glob("*__*/*.wav")):
        src, _, tgt = wav.parent.name.partition("__")
        out[(src, tgt, wav.stem)] = wav
    return out


def _target_wavs(folder: Path) -> dict[tuple[str, str], Path]:
    """``(target, utt) -> wav`` of a folder of ``<target>/<utt>.wav`` (per-target baselines)."""
    return {(w.parent.name, w.stem): w for w in sorted(folder.glob("*/*.wav")) if "__" not in w.parent.name}


def _scan_systems(
    experiments_dir: Path,
    baselines_dir: Path | None,
    seed: int,
    experiments: Sequence[str] | None,
    baselines: Sequence[str] | None,
) -> tuple[dict[str, dict[Key, Path]], dict[str, dict[tuple[str, str], Path]], dict[str, str]]:
    """Per-pair systems (experiments first, then conversion baselines), per-target baselines, and each
    system's kind. The ``source`` baseline makes no wav: the natural source recording is always a system."""
    if not experiments_dir.is_dir():
        raise InputError(f"{experiments_dir}: no such folder of converted wavs")
    names = experiments or sorted(
        p.name for p in experiments_dir.iterdir() if run_dir(experiments_dir, p.name, seed).is_dir()
    )
    per_pair: dict[str, dict[Key, Path]] = {}
    for name in names:
        folder = run_dir(experiments_dir, name, seed)
        if not folder.is_dir():
            raise InputError(f"{folder}: no converted wavs of experiment '{name}', seed {seed}")
        per_pair[name] = _pair_wavs(folder)
        if not per_pair[name]:
            raise InputError(f"{folder}: no converted wavs (<source>__<target>/<utt>.wav)")
    kinds = dict.fromkeys(per_pair, "experiment")
    per_target: dict[str, dict[tuple[str, str], Path]] = {}
    if baselines_dir is not None:
        if not baselines_dir.is_dir():
            raise InputError(f"{baselines_dir}: no such folder of baseline wavs")
        found = sorted(p.name for p in baselines_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        for name in [b for b in (baselines if baselines is not None else found) if b != "source"]:
            if name in kinds or name == "natural":
                raise InputError(f"{baselines_dir / name}: a baseline named like another system ('{name}')")
            kinds[name] = "baseline"
            if name not in found:
                raise InputError(f"{baselines_dir}: no wavs of baseline '{name}' (found: {', '.join(found)})")
            pairs = _pair_wavs(baselines_dir / name)
            if pairs:
                per_pair[name] = pairs
            else:
                per_target[name] = _target_wavs(baselines_dir / name)
                if not per_target[name]:
                    raise InputError(f"{baselines_dir / name}: no wavs (<src>__<tgt>/ or <target>/<utt>.wav)")
    if not per_pair:
        raise InputError(
            f"{experiments_dir}: no converted wavs (<experiment>/seed-{seed}/<src>__<tgt>/<utt>.wav)"
        )
    return per_pair, per_target, kinds


def _plan(
    per_pair: dict[str, dict[Key, Path]],
    per_target: dict[str, dict[tuple[str, str], Path]],
    natural: dict[tuple[str, str], tuple[Path, str]],
    pairs: Sequence[tuple[str, str]] | None,
    sentences: int,
) -> list[Key]:
    """The ``(source, target, utt)`` every system has a wav of: the first ``sentences`` per chosen pair."""
    common = set.intersection(*(set(wavs) for wavs in per_pair.values()))
    common = {
        k
        for k in common
        if (k[1], k[2]) in natural
        and (k[0], k[2]) in natural
        and all((k[1], k[2]) in w for w in per_target.values())
    }
    available = sorted({(k[0], k[1]) for k in common})
    chosen = list(pairs) if pairs else available
    missing = [f"{s}__{t}" for s, t in chosen if (s, t) not in available]
    if missing:
        raise InputError(f"pairs without wavs of every system: {', '.join(missing)} (have: {available})")
    plan = []
    for src, tgt in chosen:
        plan += sorted(k for k in common if k[:2] == (src, tgt))[:sentences]
    if not plan:
        raise InputError("no sentence has a wav of every system and its natural recordings")
    return plan


def _reference(
    natural: dict[tuple[str, str], tuple[Path, str]], target: str, utt: str, mode: str, avoid: set[str]
) -> Path:
    """The target speaker's natural recording for the similarity task: the same sentence, or a different
    one (preferably one not in the test), chosen reproducibly."""
    if mode == "same":
        return natural[(target, utt)][0]
    others = sorted(u for s, u in natural if s == target and u != utt)
    preferred = [u for u in others if u not in avoid] or others
    if not preferred:
        raise InputError(
            f"speaker '{target}' has no other recording than '{utt}' for the similarity reference"
        )
    return natural[(target, random.Random(f"{target}|{utt}").choice(preferred))][0]


def _blind_ids(names: Iterable[tuple[str, str]], seed: int) -> tuple[System, ...]:
    """Opaque ids ``S01``... assigned in a shuffled order, so an id says nothing about the system."""
    entries = list(names)
    ids = [f"S{i + 1:02d}" for i in range(len(entries))]
    random.Random(seed).shuffle(ids)
    return tuple(System(i, n, k) for i, (n, k) in zip(ids, entries, strict=True))  # type: ignore[arg-type]


def build_definition(
    experiments_dir: str | Path,
    corpus_dir: str | Path,
    *,
    baselines_dir: str | Path | None = None,
    seed: int = 0,
    experiments: Sequence[str] | None = None,
    baselines: Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    sentences: int = 2,
    similarity_reference: Literal["different", "same"] = "different",
    per_rater: int | None = None,
    title: str = "Voice conversion listening test",
    show_text: bool = True,
    blind_seed: int = 0,
) -> TestDefinition:
    """Read the folders and build the test: every system x chosen pair x ``sentences`` sentences, for both
    tasks (``source``, the unconverted recording, in the similarity task only), with audio hashes."""
    if sentences < 1 or (per_rater is not None and per_rater < 1):
        raise InputError(f"sentences and per_rater must be >= 1, got {sentences} and {per_rater}")
    natural = _natural_recordings(Path(corpus_dir))
    per_pair, per_target, kinds = _scan_systems(
        Path(experiments_dir), Path(baselines_dir) if baselines_dir else None, seed, experiments, baselines
    )
    plan = _plan(per_pair, per_target, natural, pairs, sentences)
    systems = _blind_ids([*kinds.items(), ("natural", "natural"), ("source", "source")], blind_seed)
    items = _items(plan, per_pair, per_target, natural, {s.name: s.id for s in systems}, similarity_reference)
    return TestDefinition(title, seed, systems, items, per_rater, show_text, similarity_reference)


def _items(
    plan: list[Key],
    per_pair: dict[str, dict[Key, Path]],
    per_target: dict[str, dict[tuple[str, str], Path]],
    natural: dict[tuple[str, str], tuple[Path, str]],
    ids: dict[str, str],
    similarity_reference: str,
) -> tuple[Item, ...]:
    """Both tasks' trials of every system on the plan; a naturalness trial per distinct wav."""
    avoid = {k[2] for k in plan}
    hashes: dict[Path, str] = {}

    def sha(p: Path) -> str:
        if p not in hashes:
            hashes[p] = file_sha256(p)
        return hashes[p]

    items: dict[str, Item] = {}
    for key in plan:
        src, tgt, utt = key
        wavs = {n: w[key] for n, w in per_pair.items()} | {n: w[(tgt, utt)] for n, w in per_target.items()}
        wavs |= {"natural": natural[(tgt, utt)][0], "source": natural[(src, utt)][0]}
        ref = _reference(natural, tgt, utt, similarity_reference, avoid)
        for name, wav in wavs.items():
            for task in ("naturalness", "similarity"):
                if task == "naturalness" and name == "source":
                    continue
                # a per-target wav (and its reference) is the same trial whatever the source: once
                unit = (tgt, tgt, utt) if name in (*per_target, "natural") else key
                item_id = _item_id(task, name, unit)  # one naturalness item per distinct wav
                r = (str(ref), sha(ref)) if task == "similarity" else ("", "")
                text = natural[(tgt, utt)][1]
                item = Item(item_id, task, ids[name], src, tgt, utt, text, str(wav), sha(wav), *r)  # type: ignore[arg-type]
                items.setdefault(item_id, item)
    return tuple(items.values())


def save_definition(definition: TestDefinition, path: str | Path) -> None:
    """Write the definition as JSON (atomically), audio paths relative to the file's folder, so a test
    folder and the run beside it move (or are cloned) together."""
    base = Path(path).absolute().parent
    data = {k: v for k, v in asdict(definition).items() if not k.startswith("_")}
    for item in data["items"]:
        for key in ("stimulus", "reference"):
            if item[key]:
                item[key] = os.path.relpath(Path(item[key]).absolute(), base)
    write_json(path, data)


def load_definition(path: str | Path) -> TestDefinition:
    """Read a definition written by :func:`save_definition`; a clear error naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no test definition (run `vc listen build` first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != FORMAT_VERSION:
            raise InputError(
                f"{path}: test definition version {data.get('version')}, expected {FORMAT_VERSION}"
            )
        data["systems"] = tuple(System(**s) for s in data["systems"])
        base = path.absolute().parent
        for item in data["items"]:
            for key in ("stimulus", "reference"):
                item[key] = os.path.normpath(base / item[key]) if item.get(key) else ""
        data["items"] = tuple(Item(**i) for i in data["items"])
        return TestDefinition(**data)
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as err:
        raise InputError(f"{path}: not a test definition ({err})") from None


def rater_order(definition: TestDefinition, token: str) -> list[Item]:
    """The trials of one rater in their order: the naturalness block then the similarity block, each
    shuffled by a generator seeded from the token (a reload gives the same order), cut to ``per_rater``."""
    rng = random.Random(int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big"))
    order: list[Item] = []
    for task in ("naturalness", "similarity"):
        block = [i for i in definition.items if i.task == task]
        rng.shuffle(block)
        order += block[: definition.per_rater] if definition.per_rater else block
    return order
