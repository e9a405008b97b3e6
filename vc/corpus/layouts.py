"""Find the utterances of a real corpus in its usual directory layout.

Layouts:

``speaker_dirs``
    ``<root>/<speaker>/<utt>.wav`` — VCC2016 (``vcc2016_training/SF1/100001.wav``), VCC2018
    (``vcc2018_training/VCC2SF1/10001.wav``) and CMU ARCTIC re-packaged per speaker
    (``<root>/slt/arctic_a0001.wav``). The original ARCTIC folders ``cmu_us_slt_arctic/wav/*.wav`` work
    too: a ``wav/`` subfolder is looked into and the speaker is named ``slt``. The same file stem is the same
    sentence for every speaker.
``vctk``
    VCTK 0.80 (``<root>/wav48/p225/p225_001.wav``, texts in ``<root>/txt/p225/p225_001.txt``) or VCTK 0.92
    (``<root>/wav48_silence_trimmed/p225/p225_001_mic1.flac``; ``mic1`` is used). The utterance id is the
    number (``001``). VCTK speakers read mostly different sentences; where texts exist, an id only counts as
    parallel across speakers when its text is the same for them (see :mod:`vc.corpus.split`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vc.errors import InputError

__all__ = ["AUDIO_SUFFIXES", "LAYOUTS", "CorpusLayoutError", "SourceUtterance", "scan_corpus"]

AUDIO_SUFFIXES = (".wav", ".flac")
_ARCTIC_DIR = re.compile(r"^cmu_us_(?P<spk>[A-Za-z0-9]+)_arctic$")
_VCTK_FILE = re.compile(r"^(?P<spk>[^_]+)_(?P<id>[^_]+?)(?:_(?P<mic>mic\d))?$")


class CorpusLayoutError(InputError):
    """The corpus folder is missing, empty, or lacks a requested speaker. The message names the path."""


@dataclass(frozen=True)
class SourceUtterance:
    """One utterance before preparation. ``audio`` is a file path; ``text`` may be empty."""

    speaker: str
    utt_id: str
    audio: Path
    text: str = ""


def _speaker_name(folder: Path) -> str:
    match = _ARCTIC_DIR.match(folder.name)
    return match["spk"] if match else folder.name


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _scan_speaker_dirs(root: Path) -> dict[str, list[SourceUtterance]]:
    found: dict[str, list[SourceUtterance]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        audio_dir = folder / "wav" if (folder / "wav").is_dir() else folder
        files = _audio_files(audio_dir)
        if files:
            spk = _speaker_name(folder)
            found[spk] = [SourceUtterance(spk, f.stem, f) for f in files]
    return found


def _scan_vctk(root: Path) -> dict[str, list[SourceUtterance]]:
    for name in ("wav48_silence_trimmed", "wav48", "wav"):
        wav_root = root / name
        if wav_root.is_dir():
            break
    else:
        raise CorpusLayoutError(f"{root}: not a VCTK folder (no wav48_silence_trimmed/ or wav48/ inside)")
    found: dict[str, list[SourceUtterance]] = {}
    for folder in sorted(p for p in wav_root.iterdir() if p.is_dir()):
        utts = []
        for f in _audio_files(folder):
            match = _VCTK_FILE.match(f.stem)
            if not match or (match["mic"] not in (None, "mic1")):
                continue
            txt = root / "txt" / folder.name / f"{match['spk']}_{match['id']}.txt"
            text = txt.read_text(encoding="utf-8", errors="replace").strip() if txt.is_file() else ""
            utts.append(SourceUtterance(folder.name, match["id"], f, text))
        if utts:
            found[folder.name] = utts
    return found


#: ``corpus.layout`` -> the function that finds each speaker's utterances under the corpus root. A new layout:
#: one scan function here and its name in the config's ``corpus.layout`` Literal.
LAYOUTS: dict[str, Callable[[Path], dict[str, list[SourceUtterance]]]] = {
    "speaker_dirs": _scan_speaker_dirs,
    "vctk": _scan_vctk,
}


def scan_corpus(root: str | Path, layout: str, speakers: tuple[str, ...] = ()) -> list[SourceUtterance]:
    """All utterances of ``speakers`` (all speakers found when empty) under ``root`` in ``layout``.

    Raises :class:`CorpusLayoutError` for a missing or empty folder and for unknown speakers, naming them.
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusLayoutError(f"corpus.root: folder {root} does not exist")
    if layout not in LAYOUTS:
        raise CorpusLayoutError(f"corpus.layout: unknown layout '{layout}' (layouts: {', '.join(LAYOUTS)})")
    found = LAYOUTS[layout](root)
    if not found:
        raise CorpusLayoutError(f"{root}: no speaker folders with .wav or .flac files ({layout} layout)")
    missing = [s for s in speakers if s not in found]
    if missing:
        raise CorpusLayoutError(
            f"corpus.speakers: unknown speaker(s) {', '.join(missing)} in {root}; found: {', '.join(found)}"
        )
    chosen = speakers or tuple(found)
    if len(chosen) < 2:
        raise CorpusLayoutError(f"{root}: voice conversion needs at least 2 speakers, found {len(chosen)}")
    return [utt for spk in chosen for utt in found[spk]]
