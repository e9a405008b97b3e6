"""Offline speech synthesis with eSpeak NG, for the embedded default corpus.

libespeak-ng (the ``espeakng-loader`` wheel bundles 1.52 and its data) is driven through ``ctypes`` in
synchronous mode: :func:`synthesize` returns the samples the library hands to a callback.

Determinism. libespeak-ng keeps synthesis state in C statics that no API call resets: the pitch-flutter
phase, the automatic gain control, the echo buffer, and libc ``rand()`` for breath noise. Reusing one
loaded library therefore makes an utterance depend on every utterance synthesized before it in the process
(even its length changes by a few samples). Each utterance is instead synthesized by a *fresh* library
instance: a private copy of the shared object is loaded, used once, terminated and unloaded (a few ms in
all, mostly loading the language's dictionary), and libc ``rand()`` is seeded before synthesis. The same
text and :class:`~vc.config.VoiceConfig` therefore give byte-identical audio in any process, in any order,
whether from :func:`synthesize` or :func:`synthesize_many`. A lock serializes instances within a process
(the library is not thread-safe); :func:`synthesize_many` parallelises over processes.

Voices. A voice name is ``language`` or ``language+variant``: ``en-us``, ``en-gb+m2``. ``language`` is a
language code that eSpeak NG lists (:func:`available_voices`); it is resolved here to the voice file that
lists it with the highest priority, because ``espeak_SetVoiceByName`` matches voice *files* and names only
(``en-gb`` is the file ``gmw/en``, so the library alone rejects ``en-gb``). ``variant`` is a file in
``espeak-ng-data/voices/!v`` (:func:`available_variants`). The library silently ignores an unknown variant,
so :func:`validate_voice` is the only protection against a typo.

The end-of-text pause (``espeakENDPAUSE``) is kept: without it the output stops while the last sound (and
a variant's echo) is still decaying, a small step at about -50 dBFS. It adds about 0.16 s of near-silence,
which corpus preparation trims with the leading silence.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import difflib
import functools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vc.config import VoiceConfig

__all__ = [
    "SAMPLE_RATE",
    "EspeakError",
    "available_variants",
    "available_voices",
    "synthesize",
    "synthesize_many",
    "validate_voice",
]

log = logging.getLogger(__name__)

#: Output sample rate of eSpeak NG's formant synthesizer (checked against ``espeak_Initialize``).
SAMPLE_RATE: int = 22050

# speak_lib.h (API revision 12)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a data error as a return code instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_EE_OK = 0
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_RATE_MIN, _RATE_MAX = 80, 450  # espeakRATE_MINIMUM, espeakRATE_MAXIMUM
_BUFLENGTH_MS = 200  # audio per callback
_RAND_SEED = 1  # libc rand() drives eSpeak's breath noise

# Variants that replace voicing by breath noise: WORLD finds no F0 in them.
_WHISPER_VARIANTS = frozenset({"whisper", "whisperf"})
# A variant is "mostly unvoiced" when less than this fraction of a probe utterance's speech frames is voiced.
_MIN_VOICED_FRACTION = 0.5
_PROBE_TEXT = "The birch canoe slid on the smooth planks."  # a Harvard sentence

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()
_ACTIVE = threading.local()  # set while this thread holds an engine: nesting would deadlock on _LOCK


class EspeakError(RuntimeError):
    """eSpeak NG is missing, rejected a call, or was given an unknown voice or unusable text."""


class _Voice(ctypes.Structure):
    """``espeak_VOICE``."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated code) pairs, ended by a 0 byte
        ("identifier", ctypes.c_char_p),  # voice file relative to espeak-ng-data/voices or lang
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class _Paths:
    library: Path
    data: Path


@functools.cache
def _paths() -> _Paths:
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakError(
            "eSpeak NG is not installed; install the optional extra: pip install 'vc[espeak]'"
        ) from None
    return _Paths(Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path()))


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)  # the process's C library: the one libespeak-ng's rand() binds to


class _Engine:
    """One initialised library instance; lives for one :func:`_engine` block."""

    def __init__(self, lib: ctypes.CDLL, data: Path) -> None:
        self.lib = lib
        self._declare()
        self._chunks: list[bytes] = []
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFLENGTH_MS, os.fsencode(data), _INITIALIZE_DONT_EXIT
        )
        if rate != SAMPLE_RATE:
            raise EspeakError(
                f"espeak_Initialize with data {data} returned {rate}, expected {SAMPLE_RATE} Hz"
            )
        # The library calls this for as long as it is loaded: self holds the reference until it is unloaded.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _declare(self) -> None:
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_GetParameter.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip

    def _collect(self, wav: Any, numsamples: int, events: int | None) -> int:
        if wav and numsamples > 0:
            self._chunks.append(ctypes.string_at(wav, numsamples * ctypes.sizeof(ctypes.c_short)))
        return 0  # continue synthesis

    def _check(self, status: int, what: str) -> None:
        if status != _EE_OK:
            raise EspeakError(f"{what} failed (eSpeak NG status {status})")

    def list_languages(self) -> list[tuple[str, int, str]]:
        """``(language code, priority, voice file)`` for every language voice (variants excluded)."""
        voices = self.lib.espeak_ListVoices(None)  # NULL-terminated array
        out = []
        i = 0
        while voices[i]:
            identifier = voices[i].contents.identifier.decode()
            addr = voices[i].contents.languages  # (priority byte, C string) pairs, then a 0 byte
            while priority := ctypes.c_ubyte.from_address(addr).value:
                code = ctypes.string_at(addr + 1)
                out.append((code.decode(), priority, identifier))
                addr += len(code) + 2
            i += 1
        return out

    def set_voice(self, identifier: str, voice: VoiceConfig) -> None:
        # SetVoiceByName resets the prosody parameters: the voice first, then rate, pitch and range.
        self._check(
            self.lib.espeak_SetVoiceByName(identifier.encode()), f"espeak_SetVoiceByName({identifier!r})"
        )
        current = self.lib.espeak_GetCurrentVoice()
        got = current.contents.identifier.decode() if current and current.contents.identifier else None
        if got != identifier:
            raise EspeakError(f"eSpeak NG selected voice {got!r} instead of {identifier!r}")
        for param, name, value in (
            (_PARAM_RATE, "rate", voice.rate),
            (_PARAM_PITCH, "pitch", voice.pitch),
            (_PARAM_RANGE, "range", voice.range),
        ):
            self._check(self.lib.espeak_SetParameter(param, value, 0), f"espeak_SetParameter({name}={value})")
            if (now := self.lib.espeak_GetParameter(param, 1)) != value:
                raise EspeakError(f"eSpeak NG {name} is {now} after setting it to {value}")

    def synth(self, text: str) -> np.ndarray:
        """Synthesize ``text`` with the current voice; int16 ``(N,)``."""
        encoded = text.encode("utf-8") + b"\0"
        self._chunks.clear()
        # A fresh instance already starts from eSpeak's own initial seed; libc's rand() is process-wide.
        self._check(self.lib.espeak_ng_SetRandSeed(ctypes.c_long(_RAND_SEED)), "espeak_ng_SetRandSeed")
        _libc().srand(ctypes.c_uint(_RAND_SEED))
        flags = _CHARS_UTF8 | _ENDPAUSE  # see the module docstring
        status = self.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, flags, None, None)
        self._check(status, "espeak_Synth")
        self._check(self.lib.espeak_Synchronize(), "espeak_Synchronize")
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)


@contextlib.contextmanager
def _engine() -> Iterator[_Engine]:
    """A fresh library instance: a private copy of the shared object, loaded, initialised, then unloaded.

    A new file (a new inode) makes the dynamic loader map a new instance with pristine statics even if an
    earlier instance, or someone else's copy of libespeak-ng, is still loaded.
    """
    if getattr(_ACTIVE, "engine", False):
        raise RuntimeError("eSpeak NG engines do not nest: resolve voices before opening an engine")
    paths = _paths()
    with _LOCK, tempfile.TemporaryDirectory(prefix="vc-espeak-") as tmp:
        copy = Path(tmp) / paths.library.name
        shutil.copyfile(paths.library, copy)
        try:
            lib = ctypes.CDLL(str(copy))
        except OSError as err:
            raise EspeakError(f"cannot load libespeak-ng from {paths.library}: {err}") from None
        copy.unlink()  # it stays mapped; a process killed mid-synthesis leaves no copy behind
        _ACTIVE.engine = True
        try:
            engine = _Engine(lib, paths.data)
            try:
                yield engine
            finally:
                if (status := lib.espeak_Terminate()) != _EE_OK:
                    log.warning("espeak_Terminate failed (eSpeak NG status %d)", status)
        finally:
            _ACTIVE.engine = False
            _ctypes.dlclose(lib._handle)  # unload; the engine, and with it the callback, is released after


# ---------------------------------------------------------------------------------------------- voices
@functools.cache
def _languages() -> dict[str, str]:
    """Language code -> the voice file that lists it with the highest priority (lowest number)."""
    with _engine() as engine:
        entries = engine.list_languages()
    best: dict[str, tuple[int, bool, str]] = {}
    for code, priority, identifier in entries:
        # Ties: prefer the file named after the code (yue: sit/yue over sit/yue-Latn-jyutping), then by name.
        key = (priority, Path(identifier).name.lower() != code, identifier)
        if code not in best or key < best[code]:
            best[code] = key
    return {code: key[2] for code, key in sorted(best.items())}


def available_voices() -> list[str]:
    """Language codes eSpeak NG can speak (``en-us``, ``en-gb``, ``fr``, ...), sorted."""
    return list(_languages())


def available_variants() -> list[str]:
    """Voice variant names (``m1``..``m8``, ``f1``..``f5``, ``klatt``, ``whisper``, ...), sorted.

    Whisper-like variants are listed too; :func:`validate_voice` rejects them.
    """
    folder = _paths().data / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def _split(name: str) -> tuple[str, str | None]:
    language, plus, variant = name.partition("+")
    return language, (variant if plus else None)


def _close(name: str, known: Sequence[str]) -> str:
    lowered = {k.lower(): k for k in known}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.6)
    return ", ".join(lowered[m] for m in matches)


def _resolve(name: str) -> str:
    """The voice file ``name`` selects (``gmw/en-US+m3``); raises for an unknown language or variant."""
    language, variant = _split(name)
    languages = _languages()
    if language not in languages:
        close = _close(language, list(languages))
        hint = f"; did you mean: {close}" if close else "; see available_voices()"
        raise EspeakError(f"voice '{name}': unknown eSpeak NG language '{language}'{hint}")
    if variant is None:
        return languages[language]
    variants = available_variants()
    if variant not in variants:
        close = _close(variant, variants) or ("m" + variant if variant.isdigit() else "")
        hint = f"did you mean: {close}" if close else "known variants: " + ", ".join(variants)
        raise EspeakError(f"voice '{name}': unknown eSpeak NG variant '{variant}'; {hint}")
    return f"{languages[language]}+{variant}"


def validate_voice(name: str) -> None:
    """Check that ``name`` (``language`` or ``language+variant``) is a usable eSpeak NG voice.

    Raises :class:`EspeakError` naming an unknown language or variant with the closest known names, and for
    a whisper-like variant: ``whisper``, ``whisperf``, or any variant whose speech WORLD's Harvest
    finds mostly unvoiced (measured once per variant and process on a probe sentence, about 0.5 s), since
    such audio has no F0 for WORLD to analyse.
    """
    identifier = _resolve(name)
    _, variant = _split(name)
    if variant is None:
        return
    advice = "which breaks WORLD F0 analysis; choose a voiced variant such as m1-m8 or f1-f5"
    if variant in _WHISPER_VARIANTS:
        raise EspeakError(f"voice '{name}': variant '{variant}' whispers (no voicing), {advice}")
    fraction = _voiced_fraction(identifier)
    if fraction < _MIN_VOICED_FRACTION:
        raise EspeakError(
            f"voice '{name}': variant '{variant}' is mostly unvoiced (Harvest voices {fraction:.0%} of its "
            f"speech frames), {advice}"
        )


@functools.cache
def _voiced_fraction(identifier: str) -> float:
    """Fraction of a probe utterance's speech frames (within 30 dB of the loudest) that Harvest voices.

    Harvest, the project's default F0 method, rather than DIO: DIO leaves most of the Klatt variants'
    clearly voiced speech unvoiced.
    """
    import pyworld

    with _engine() as engine:
        engine.set_voice(identifier, VoiceConfig())
        wav = engine.synth(_PROBE_TEXT).astype(np.float64) / 32768.0
    hop = SAMPLE_RATE // 200  # 5 ms, the frame period below
    f0, _ = pyworld.harvest(wav, SAMPLE_RATE, f0_floor=60.0, f0_ceil=500.0, frame_period=5.0)
    n = min(len(f0), len(wav) // hop)
    power = np.square(wav[: n * hop]).reshape(n, hop).mean(axis=1)
    speech = power > power.max() * 1e-3
    return float(np.mean(f0[:n][speech] > 0)) if speech.any() else 0.0


# ------------------------------------------------------------------------------------------- synthesis
def _check_job(text: str, voice: VoiceConfig) -> None:
    if not text or not text.strip():
        raise EspeakError(f"cannot synthesize empty text (voice '{voice.voice}')")
    if "\0" in text:
        raise EspeakError(f"text contains a NUL character: {text!r}")
    for name, value, lo, hi in (
        ("pitch", voice.pitch, 0, 100),
        ("range", voice.range, 0, 100),
        ("rate", voice.rate, _RATE_MIN, _RATE_MAX),
    ):
        if not lo <= value <= hi:
            raise EspeakError(f"voice '{voice.voice}': {name} must be in [{lo}, {hi}], got {value}")


def _synthesize_int16(text: str, voice: VoiceConfig) -> np.ndarray:
    """Synthesize a checked job (:func:`_check_job`, :func:`validate_voice`); int16 ``(N,)``."""
    identifier = _resolve(voice.voice)  # first: building the voice catalog opens an engine, which cannot nest
    with _engine() as engine:
        engine.set_voice(identifier, voice)
        pcm = engine.synth(text)
    if pcm.size == 0:
        raise EspeakError(f"eSpeak NG produced no audio for {text!r} (voice '{voice.voice}')")
    return pcm


def _to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / np.float32(32768.0)


def synthesize(text: str, voice: VoiceConfig) -> np.ndarray:
    """Speak ``text`` with ``voice``: float32 mono ``(N,)`` in [-1, 1) at :data:`SAMPLE_RATE`.

    Deterministic: the same text and voice give byte-identical samples (see the module docstring).
    Raises :class:`EspeakError` for an invalid voice, empty text or a library failure.
    """
    _check_job(text, voice)
    validate_voice(voice.voice)
    return _to_float(_synthesize_int16(text, voice))


def _synthesize_chunk(jobs: Sequence[tuple[int, str, VoiceConfig]]) -> list[tuple[int, np.ndarray]]:
    return [(index, _synthesize_int16(text, voice)) for index, text, voice in jobs]


def _worker_count(workers: int, jobs: int) -> int:
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers == 0:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(workers, jobs))


def synthesize_many(
    jobs: Sequence[tuple[str, VoiceConfig]], workers: int = 0, progress: bool = True
) -> list[np.ndarray]:
    """:func:`synthesize` every ``(text, voice)`` job; the results are in the order of ``jobs``.

    ``workers`` processes (0: one per available core) synthesize in parallel, each started with "spawn" so
    that no library or lock state is inherited. With ``workers=1`` the jobs run in this process, which is as
    safe (every utterance gets a fresh library instance) and avoids starting an interpreter. Every job is
    checked before any synthesis starts, so a bad voice fails fast.
    """
    for text, voice in jobs:
        _check_job(text, voice)
    for name in sorted({voice.voice for _, voice in jobs}):
        validate_voice(name)
    n_workers = _worker_count(workers, len(jobs))
    results: list[np.ndarray | None] = [None] * len(jobs)
    indexed = [(i, text, voice) for i, (text, voice) in enumerate(jobs)]
    log.info("synthesizing %d utterances with eSpeak NG in %d process(es)", len(jobs), n_workers)
    with tqdm(total=len(jobs), desc="espeak", unit="utt", disable=not progress) as bar:
        if n_workers == 1:
            for i, text, voice in indexed:
                results[i] = _synthesize_int16(text, voice)
                bar.update()
        else:
            size = max(1, min(32, len(jobs) // (4 * n_workers)))
            chunks = [indexed[i : i + size] for i in range(0, len(indexed), size)]
            with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_synthesize_chunk, chunk) for chunk in chunks]
                try:
                    for future in as_completed(futures):
                        done = future.result()
                        for i, pcm in done:
                            results[i] = pcm
                        bar.update(len(done))
                except BrokenProcessPool as err:
                    raise EspeakError(f"an eSpeak NG worker process died: {err}") from err
                except BaseException:
                    for future in futures:
                        future.cancel()  # fail fast: do not wait for the queued chunks
                    raise
    missing = [i for i, pcm in enumerate(results) if pcm is None]
    if missing:
        raise EspeakError(f"no audio came back for job(s) {missing[:10]}")
    return [_to_float(pcm) for pcm in results if pcm is not None]
