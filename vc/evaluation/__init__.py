"""Evaluation: every system (experiment or baseline) is scored by exactly this code.

- :mod:`vc.evaluation.registry`: every metric declared once (columns, direction, label, item unit);
- :mod:`vc.evaluation.recipe`: the MCD recipe (analysis, alignment, per-utterance scores) and its text;
- :mod:`vc.evaluation.metrics`: MCD, F0, MSD and DTW as plain functions;
- :mod:`vc.evaluation.perceptual`: speaker similarity, intelligibility and predicted naturalness, one module
  each, and the reference material they share;
- :mod:`vc.evaluation.score`: the one entry that scores a system with every metric;
- :mod:`vc.evaluation.summary`: means and cluster-bootstrap intervals per system and pair.
"""
