"""Sentence texts of a real corpus, from the file or folder named by ``corpus.transcripts``.

The intelligibility metric scores an ASR transcript against the sentence's text; a corpus without texts is
scored against the transcript of the source recording instead (see :mod:`vc.evaluation.score`). Two
forms:

- a **prompts file** whose texts apply to every speaker by utterance id: Festvox lines as in CMU ARCTIC's
  ``etc/arctic.data`` and ``etc/txt.done.data`` (``( arctic_a0001 "Author of the danger trail..." )``), or
  ``id<TAB>text`` lines;
- a **folder** of per-speaker text files, as VCTK's ``txt/``: ``<folder>/<speaker>/<utt_id>.txt`` or
  ``<folder>/<speaker>/<speaker>_<utt_id>.txt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vc.errors import InputError

__all__ = ["TranscriptError", "Transcripts", "read_transcripts"]

_FESTVOX = re.compile(r'^\(\s*(?P<id>\S+)\s+"(?P<text>.*)"\s*\)\s*$')


class TranscriptError(InputError):
    """The transcripts file or folder is missing or unreadable; the message names it and the params key."""


@dataclass(frozen=True)
class Transcripts:
    """Texts by utterance id (a prompts file) or by speaker folder (a folder of ``.txt`` files)."""

    source: Path
    by_id: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None

    def text(self, speaker: str, utt_id: str) -> str:
        """The text of ``speaker``'s utterance ``utt_id``, or ``""`` when there is none."""
        if self.folder is None:
            return self.by_id.get(utt_id, "")
        for name in (f"{utt_id}.txt", f"{speaker}_{utt_id}.txt"):
            path = self.folder / speaker / name
            if path.is_file():
                return path.read_text(encoding="utf-8", errors="replace").strip()
        return ""


def _parse_prompts(path: Path, key: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _FESTVOX.match(line)
        if match:
            texts[match["id"]] = match["text"].replace('\\"', '"').strip()
        elif "\t" in line:
            utt, text = line.split("\t", 1)
            texts[utt.strip()] = text.strip()
        else:
            raise TranscriptError(
                f'{key}: {path} line {number}: expected `( id "text" )` or `id<TAB>text`, got {line[:80]!r}'
            )
    if not texts:
        raise TranscriptError(f"{key}: {path} holds no transcript lines")
    return texts


def read_transcripts(path: str | Path, key: str = "corpus.transcripts") -> Transcripts:
    """Read a prompts file or index a transcripts folder (see the module docstring).

    Args:
        path: the file or folder.
        key: the params key that named it, for error messages.

    Raises:
        TranscriptError: ``path`` does not exist, or a prompts file has a line of neither form or none at all.
    """
    path = Path(path)
    if path.is_dir():
        return Transcripts(path, folder=path)
    if not path.is_file():
        raise TranscriptError(f"{key}: transcripts file {path} does not exist")
    return Transcripts(path, by_id=_parse_prompts(path, key))
