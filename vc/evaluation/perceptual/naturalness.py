"""Predicted naturalness: DNSMOS P.835 (SIG, BAK, OVRL) and P.808, from the ONNX models in ``speechmos``.

DNSMOS (Reddy et al., ICASSP 2022) is a MOS *predictor* trained on noisy and noise-suppressed speech rated by
listeners (ITU-T P.835 and P.808 protocols) at 16 kHz. It is a proxy: it was never trained on vocoded or
voice-converted speech, and it mostly hears noise and distortion, so compare systems with it, and do not
read its values as listening-test MOS.

The recipe is Microsoft's ``dnsmos_local.py`` as packaged by ``speechmos`` 0.0.1.1 (whose models this runs
with onnxruntime directly, to set the thread count and batch): resample to 16 kHz; a clip shorter than
9.01 s is tiled (repeated whole) until it is at least that long; 9.01 s windows every 1 s each give raw
SIG/BAK/OVRL from ``sig_bak_ovr.onnx`` (mapped through the non-personalised polynomials) and a P.808 score
from ``model_v8.onnx`` on a 120-band log-mel spectrogram; the clip's scores are the window means. Values are
on the 1-5 MOS scale.

Runtimes (``evaluate.dnsmos.runtime``): ``sig_bak_ovr.onnx`` is 99% nine 3x3 convolutions over a 900 x 161
spectrogram, about 40 GFLOP per window, which onnxruntime runs in float32 (``onnxruntime``: the reference's
runtime and numbers). ``openvino-bf16`` runs the same ONNX graph on OpenVINO's CPU plugin with bfloat16
inference precision (AMX tiles where the CPU has them, AVX-512 BF16 otherwise; a CPU with neither runs
float32, and the provenance records the precision used): 6.6x faster per window on a CPU with AMX, scores
within 0.06 MOS of float32 per clip and within 0.008 per system mean on the embedded corpus (README,
"Predicted naturalness"), so its last digits depend on the CPU type. ``openvino-f32`` is OpenVINO in float32
(onnxruntime's numbers to 1e-3: the check that the graph is read the same). The small P.808 model always runs
on onnxruntime in float32.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import librosa
import numpy as np

from vc.config import DnsmosConfig, DnsmosRuntime, EvaluateConfig
from vc.evaluation.perceptual.base import SimpleMetric
from vc.evaluation.perceptual.common import (
    MODEL_SAMPLE_RATE,
    check_model_path,
    file_sha256,
    nan_scores,
    package_version,
    prepare_audio,
    require,
)
from vc.evaluation.perceptual.offline import enable_offline

__all__ = [
    "DNSMOS_KEYS",
    "METRIC",
    "RUNTIMES",
    "DnsmosModel",
    "NaturalnessMetric",
    "dnsmos",
    "dnsmos_many",
    "dnsmos_provenance",
    "load_dnsmos",
]

log = logging.getLogger(__name__)

#: Keys of :func:`dnsmos` (besides ``note``).
DNSMOS_KEYS: tuple[str, ...] = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
#: Shorter input gets NaN: tiling a fraction of a second into 9 s makes a buzz, not speech.
MIN_SECONDS: float = 0.5
_INPUT_SECONDS = 9.01  # DNSMOS window length
_WINDOW = int(_INPUT_SECONDS * MODEL_SAMPLE_RATE)  # 144160 samples
_HOP = MODEL_SAMPLE_RATE  # 1 s between windows
_PRIMARY_FILE = "sig_bak_ovr.onnx"
_P808_FILE = "model_v8.onnx"
# Non-personalised polynomial maps from raw model outputs to MOS (dnsmos_local.py), highest power first.
_POLY_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_POLY_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_POLY_OVR = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


#: ``evaluate.dnsmos.runtime`` values: which runtime and precision run ``sig_bak_ovr.onnx``.
RUNTIMES: tuple[str, ...] = get_args(DnsmosRuntime)
DEFAULT_RUNTIME: DnsmosRuntime = DnsmosConfig.model_fields["runtime"].default


@dataclass(frozen=True)
class DnsmosModel:
    """The two models, where they came from, and what runs the primary one."""

    primary: Callable[[np.ndarray], np.ndarray]  # (B, 144160) waveform -> (B, 3) raw SIG, BAK, OVRL
    p808: Any  # onnxruntime.InferenceSession: (B, 900, 120) log-mel -> (B, 1) P.808 MOS
    model_dir: Path
    runtime: str = "onnxruntime"  # one of RUNTIMES
    precision: str = "float32"  # the primary model's inference precision, as its runtime reports it


def _default_model_dir() -> Path:
    enable_offline()
    require("speechmos", "speechmos")
    return Path(str(importlib.resources.files("speechmos") / "dnsmos_models"))


def load_dnsmos(
    model_dir: str | os.PathLike[str] | None = None,
    num_threads: int = 1,
    runtime: DnsmosRuntime = DEFAULT_RUNTIME,
) -> DnsmosModel:
    """Open the DNSMOS models once per process per folder, thread count and runtime.

    Args:
        model_dir: folder holding ``sig_bak_ovr.onnx`` and ``model_v8.onnx``; ``None``: the one in speechmos.
        num_threads: intra-op threads of each runtime.
        runtime: what runs ``sig_bak_ovr.onnx`` (see the module docstring): one of :data:`RUNTIMES`.

    Raises:
        MissingExtraError: onnxruntime, speechmos or (for an OpenVINO runtime) openvino is not installed.
        FileNotFoundError: a model file is missing (the message names it).
        ValueError: ``runtime`` is not one of :data:`RUNTIMES`.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"evaluate.dnsmos.runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    enable_offline()
    folder = Path(model_dir) if model_dir is not None else _default_model_dir()
    return _load_dnsmos(str(folder.expanduser().resolve()), num_threads, runtime)


@functools.lru_cache(maxsize=2)
def _load_dnsmos(model_dir: str, num_threads: int, runtime: str) -> DnsmosModel:
    ort = require("onnxruntime", "onnxruntime")
    folder = Path(model_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only

    def session(name: str) -> Any:
        path = check_model_path(folder / name, "DNSMOS model")
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    check_model_path(folder / _PRIMARY_FILE, "DNSMOS model")  # the primary model named first when absent
    p808 = session(_P808_FILE)
    if runtime == "onnxruntime":
        primary = session(_PRIMARY_FILE)
        model = DnsmosModel(lambda batch: primary.run(None, {"input_1": batch})[0], p808, folder)
    else:
        run, precision = _openvino_primary(folder, num_threads, runtime.removeprefix("openvino-"))
        model = DnsmosModel(run, p808, folder, runtime, precision)
    log.info(
        "DNSMOS: speechmos %s models in %s, %s (%s)",
        package_version("speechmos"),
        folder,
        runtime,
        model.precision,
    )
    return model


def _openvino_primary(
    folder: Path, num_threads: int, precision: str
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """``sig_bak_ovr.onnx`` compiled by OpenVINO's CPU plugin at ``precision`` (``bf16`` or ``f32``).

    Returns the batch runner ``(B, 144160) -> (B, 3)`` and the precision the plugin reports it uses (a CPU
    without bfloat16 instructions runs float32 whatever the hint)."""
    openvino = require("openvino", "openvino")
    path = check_model_path(folder / _PRIMARY_FILE, "DNSMOS model")
    core = openvino.Core()
    compiled = core.compile_model(
        core.read_model(str(path)),
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": num_threads,
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request, output = compiled.create_infer_request(), compiled.output(0)
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # an openvino.Type: bf16, f32
    used = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    names = {"bf16": "bfloat16", "f32": "float32", "f16": "float16"}
    return (lambda batch: request.infer({0: batch})[output].copy()), names.get(used, used)


def dnsmos_provenance(
    model_dir: str | os.PathLike[str] | None = None, runtime: DnsmosRuntime = DEFAULT_RUNTIME
) -> dict[str, str]:
    """Package, version, model files and their SHA-256, runtime and precision, to log beside the scores."""
    folder = Path(model_dir) if model_dir is not None else _default_model_dir()
    model = load_dnsmos(folder, 1, runtime)
    runner = "onnxruntime " + package_version("onnxruntime")
    if runtime != "onnxruntime":
        runner = f"openvino {package_version('openvino')} ({_PRIMARY_FILE}), {runner} ({_P808_FILE})"
    return {
        "package": "speechmos",
        "version": package_version("speechmos"),
        "file": f"{folder / _PRIMARY_FILE}, {folder / _P808_FILE}",
        "sha256": f"{file_sha256(str(folder / _PRIMARY_FILE))}, {file_sha256(str(folder / _P808_FILE))}",
        "runtime": f"{runner}; {_PRIMARY_FILE} in {model.precision}",
    }


def _windows(wav16: np.ndarray, max_windows: int | None = None) -> np.ndarray:
    """The 9.01 s analysis windows of one clip, ``(W, 144160)`` float32 (tiled first if shorter)."""
    while len(wav16) < _WINDOW:
        wav16 = np.concatenate([wav16, wav16])
    hops = int(np.floor(len(wav16) / MODEL_SAMPLE_RATE) - _INPUT_SECONDS) + 1
    starts = [k * _HOP for k in range(hops) if k * _HOP + _WINDOW <= len(wav16)][:max_windows]
    return np.stack([wav16[s : s + _WINDOW] for s in starts]).astype(np.float32)


def _p808_features(window: np.ndarray) -> np.ndarray:
    """Log-mel input of the P.808 model for one window, ``(900, 120)`` float32 (as ``dnsmos_local.py``)."""
    mel = librosa.feature.melspectrogram(
        y=window[:-160], sr=MODEL_SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120
    )
    return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)


def dnsmos_many(
    wavs: Sequence[np.ndarray],
    sample_rate: int,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    num_threads: int = 1,
    max_windows: int | None = None,
    batch_windows: int = 16,
    runtime: DnsmosRuntime = DEFAULT_RUNTIME,
) -> list[dict[str, Any]]:
    """:func:`dnsmos` for many clips, their windows batched through the ONNX sessions.

    Args:
        wavs: waveforms, each ``(N_i,)`` in [-1, 1] at ``sample_rate``.
        sample_rate: their rate in Hz (resampled to 16 kHz here).
        model_dir, num_threads: see :func:`load_dnsmos`.
        max_windows: score only the first this many 9.01 s windows of each clip; ``None``: all of them, as
            the reference recipe does. A clip shorter than 9 s is tiled to 9-18 s, giving 1-9 windows that
            are shifts of the same repeated clip: ``1`` is several times faster and moved single clips by up
            to 0.2 MOS on eSpeak NG sentences (their mean over a corpus much less).
        batch_windows: 9.01 s windows per session call.
        runtime: what runs ``sig_bak_ovr.onnx`` (see the module docstring).

    Returns:
        One dict per clip with :data:`DNSMOS_KEYS` and ``note`` (NaN and the reason for bad input).
    """
    model = load_dnsmos(model_dir, num_threads, runtime)
    results: list[dict[str, Any]] = [{} for _ in wavs]
    windows: list[np.ndarray] = []
    owners: list[int] = []
    for i, wav in enumerate(wavs):
        wav16, note = prepare_audio(wav, sample_rate, min_seconds=MIN_SECONDS)
        if wav16 is None:
            results[i] = nan_scores(DNSMOS_KEYS, note)
            continue
        clip_windows = _windows(wav16, max_windows)
        windows.extend(clip_windows)
        owners.extend([i] * len(clip_windows))
    if not windows:
        return results
    raw, p808 = [], []
    for k in range(0, len(windows), batch_windows):
        batch = np.stack(windows[k : k + batch_windows])
        raw.append(model.primary(batch))
        mels = np.stack([_p808_features(w) for w in batch])
        p808.append(model.p808.run(None, {"input_1": mels})[0][:, 0])
    raw_all = np.concatenate(raw).astype(np.float64)
    p808_all = np.concatenate(p808).astype(np.float64)
    owner = np.asarray(owners)
    for i in np.unique(owner):
        sig, bak, ovr = raw_all[owner == i].T
        results[i] = {
            "dnsmos_ovrl": float(np.mean(_POLY_OVR(ovr))),
            "dnsmos_sig": float(np.mean(_POLY_SIG(sig))),
            "dnsmos_bak": float(np.mean(_POLY_BAK(bak))),
            "dnsmos_p808": float(np.mean(p808_all[owner == i])),
            "note": "",
        }
    return results


def dnsmos(
    wav: np.ndarray,
    sample_rate: int,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    num_threads: int = 1,
    max_windows: int | None = None,
    runtime: DnsmosRuntime = DEFAULT_RUNTIME,
) -> dict[str, Any]:
    """Predicted MOS of one clip: ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_p808``, ``note``.

    Args:
        wav: waveform ``(N,)`` in [-1, 1] at ``sample_rate``.
        sample_rate: its rate in Hz (resampled to 16 kHz here).
        model_dir, num_threads, max_windows, runtime: see :func:`load_dnsmos` and :func:`dnsmos_many`.

    Returns:
        Scores on the 1-5 scale; NaN and the reason in ``note`` for empty, silent, NaN or too-short input.
    """
    return dnsmos_many(
        [wav],
        sample_rate,
        model_dir=model_dir,
        num_threads=num_threads,
        max_windows=max_windows,
        runtime=runtime,
    )[0]


class NaturalnessMetric(SimpleMetric):
    """DNSMOS P.835 and P.808 predicted MOS as a perceptual group."""

    name = "naturalness"
    packages = (("onnxruntime", "onnxruntime"), ("speechmos", "speechmos"), ("openvino", "openvino"))
    params_key = "evaluate.dnsmos"

    def provenance(self, cfg: EvaluateConfig) -> dict[str, str]:
        return {
            **dnsmos_provenance(runtime=cfg.dnsmos.runtime),
            "max_windows": str(cfg.dnsmos.max_windows),
        }

    def recipe(self, cfg: EvaluateConfig) -> str:
        windows = {
            None: "the scores of every 9.01 s window (1 s hop) averaged",
            1: "one 9.01 s window scored (the first)",
        }.get(
            cfg.dnsmos.max_windows,
            f"the scores of the first {cfg.dnsmos.max_windows} 9.01 s windows averaged",
        )
        runtime = {
            "onnxruntime": "onnxruntime, float32",
            "openvino-bf16": "P.835 on OpenVINO in bfloat16 where the CPU has it, P.808 on onnxruntime",
            "openvino-f32": "P.835 on OpenVINO, P.808 on onnxruntime, float32",
        }[cfg.dnsmos.runtime]
        return (
            f"Predicted MOS: DNSMOS P.835 (SIG, BAK, OVRL) and P.808 (speechmos's ONNX models; {runtime}) "
            f"on 16 kHz audio (soxr); a clip shorter than 9.01 s is tiled; {windows}."
        )

    def score_wav(
        self, wav: np.ndarray, sample_rate: int, reference_text: str, cfg: EvaluateConfig
    ) -> tuple[dict[str, Any], str]:
        mos = dnsmos(
            wav,
            sample_rate,
            num_threads=1,
            max_windows=cfg.dnsmos.max_windows,
            runtime=cfg.dnsmos.runtime,
        )
        return {k: mos[k] for k in DNSMOS_KEYS}, mos["note"]


METRIC = NaturalnessMetric()
