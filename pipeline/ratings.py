"""Stage `ratings`: the listening test's exported ratings -> naturalness MOS and similarity per system.

Reads the test definition (``<listening>/test.json``, written by ``vc listen build``) and every exported
ratings file (``<listening>/exports/*.csv|*.jsonl``, written by ``vc listen export``), analyses them with
:func:`vc.listen.ratings.analyse_ratings` (cluster bootstrap over raters and sentences, paired differences,
stale ratings left out, post-screening) and writes ``ratings.json`` for the report. Nothing the raters made is
written to or deleted. With no test built or no ratings exported yet, it writes what is missing, and the
report says so. When there are ratings, each system's scores are logged to MLflow (one run, stage
``ratings``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from pipeline.common import read_params, run
from vc.config import Params
from vc.io import atomic_dir, write_json
from vc.listen.protocol import load_definition
from vc.listen.ratings import RatingsAnalysis, analyse_ratings
from vc.tracking import RunTracker

log = logging.getLogger("pipeline.ratings")

RESULT_FILE = "ratings.json"
EXPORT_SUFFIXES = (".csv", ".jsonl")


def _missing(reason: str) -> dict[str, Any]:
    return {"status": "none", "reason": reason}


def analyse(listening: Path, params: Params) -> tuple[dict[str, Any], RatingsAnalysis | None]:
    """The stage's result (``status``: ``none`` with the reason, or ``rated`` with the analysis)."""
    test = listening / "test.json"
    if not test.is_file():
        return _missing(f"no listening test built yet ({test} is absent; `vc listen build`)"), None
    exports = sorted(p for p in (listening / "exports").glob("*") if p.suffix in EXPORT_SUFFIXES)
    if not exports:
        return _missing(
            f"no ratings exported yet ({listening / 'exports'} is empty; `vc listen export`)"
        ), None
    cfg, ev = params.ratings, params.evaluate
    analysis = analyse_ratings(
        exports,
        load_definition(test),
        reference=cfg.reference,
        natural_threshold=cfg.natural_threshold,
        exclude_low_raters=cfg.exclude_low_raters,
        confidence=ev.confidence,
        n_resamples=ev.bootstrap,
        seed=ev.seed,
    )
    if analysis.n_used == 0:
        reason = f"{len(exports)} export(s), but no rating of the current conversions in them"
        return {**_missing(reason), "stale": analysis.n_stale, "unknown": analysis.n_unknown}, analysis
    result = {"status": "rated", "exports": [p.name for p in exports], **dataclasses.asdict(analysis)}
    return result, analysis


def _log(params: Params, params_path: Path, analysis: RatingsAnalysis, out: Path) -> None:
    tracker = RunTracker.for_stage(params, "ratings", "ratings", params_path, kind="ratings")
    with tracker.terminate_on_exit():
        metrics = {}
        for s in analysis.systems:
            for task in ("naturalness", "similarity"):
                score = getattr(s, task)
                if score.n:
                    metrics[f"ratings/{s.name}/{task}"] = score.mean
        tracker.log_metrics({**metrics, "ratings/used": analysis.n_used, "ratings/stale": analysis.n_stale})
        tracker.log_artifact(out / RESULT_FILE, "ratings")


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    result, analysis = analyse(Path(args.listening), params)
    with atomic_dir(args.out) as tmp:
        write_json(tmp / RESULT_FILE, result)
    if result["status"] != "rated" or analysis is None:
        log.info("no listening-test ratings: %s", result["reason"])
        return
    log.info(
        "%d ratings used (%d stale, %d excluded by screening) from %d export(s)",
        analysis.n_used,
        analysis.n_stale,
        analysis.n_excluded,
        len(result["exports"]),
    )
    _log(params, Path(args.params), analysis, Path(args.out))


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listening", required=True, help="the listening test's folder (vc listen --folder)")
    parser.add_argument("--out", required=True)
    return parser


if __name__ == "__main__":
    run(main, build_parser())
