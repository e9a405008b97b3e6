"""Loudness-matched copies of the stimuli for playback; the scored files are never touched.

Each clip's active speech level is set to one target (``-26 dBFS`` by default, the level ITU-T P.56 practice
uses) by :func:`vc.audio.match_level` (the same rule as the listening page: the RMS over the 20 ms frames
within 40 dB of the clip's loudest frame, the gain lowered where it would push a peak above -1 dBFS). The
copy is written once, as 16-bit PCM, into a cache folder named by the original file's sha256, so a changed
file never plays from a stale copy.
"""

from __future__ import annotations

from pathlib import Path

from vc.audio import match_level, to_mono
from vc.io import read_audio, write_wav

__all__ = ["playback_copy"]


def playback_copy(path: str | Path, sha256: str, cache: str | Path, target_dbfs: float) -> Path:
    """The loudness-matched copy of ``path`` (whose sha256 is ``sha256``) in ``cache``; made on first use."""
    out = Path(cache) / f"{sha256}_{target_dbfs:+.1f}.wav"
    if not out.is_file():
        wav, rate = read_audio(path)
        wav, _ = to_mono(wav)
        write_wav(out, match_level(wav, rate, target_dbfs).wav, rate)  # atomic: never a half copy
    return out
