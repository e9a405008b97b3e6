"""Stage `report`: regenerate reports/ (Markdown, figures, DVC metrics and plots) from the evaluations."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.common import read_params, run
from vc.perceptual.scoring import ReferenceMaterial
from vc.report import build_report, load_results, recipe_markdown
from vc.vocoders.store import MANIFEST_FILE

log = logging.getLogger("pipeline.report")


def _vocoder_manifest(folder: Path) -> dict | None:
    """The `vocoder` stage's manifest, or None when that stage has not run (a report without mel rows)."""
    path = folder / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    names = list(params.experiments)
    results = load_results(args.eval, names, list(params.seeds), list(params.baselines))
    metrics = build_report(
        args.out,
        results,
        title=params.report.title,
        recipe=recipe_markdown(params.features, params.evaluate, params.data.sample_rate),
        corpus_summary=json.loads((Path(args.corpus) / "summary.json").read_text()),
        features_summary={
            **json.loads((Path(args.features) / "summary.json").read_text()),
            **json.loads(Path(args.features_timing).read_text()),
        },
        experiments={n: params.experiment(n) for n in names},
        evaluate=params.evaluate,
        convert=params.convert,
        reference=params.report.reference,
        perceptual=ReferenceMaterial.load(Path(args.eval) / "references" / "perceptual"),
        vocoder=_vocoder_manifest(Path(args.vocoder)),
    )
    for name, m in metrics.items():
        log.info(
            "%-20s MCD %.2f dB [%.2f, %.2f], n %d",
            name,
            m["mcd_db"],
            m["mcd_db_ci_low"],
            m["mcd_db_ci_high"],
            m["n"],
        )
    log.info("report written to %s", Path(args.out) / "report.md")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", default="eval")
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--features-timing", default="data/features-timing.json")
    parser.add_argument("--vocoder", default="models/vocoder", help="the `vocoder` stage's output")
    parser.add_argument("--out", default="reports")
    run(main, parser)
