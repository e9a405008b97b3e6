"""Stage `diagnosis`: which switch makes an experiment fail (params ``diagnosis``), scored on the validation
sentences only; and the same walk for stage `contrast` (:mod:`pipeline.contrast`).

Every run trains from seed ``diagnosis.seed`` for ``diagnosis.iterations`` generator updates: the working
experiment ``diagnosis.start`` unchanged, then with each of ``diagnosis.switches`` added alone (``+name``:
one switch of the diagnosed experiment), then the diagnosed experiment ``diagnosis.experiment`` itself
(:meth:`vc.config.Params.diagnosis_runs`). Each run's validation curve
(:mod:`vc.evaluation.validation`: MCD to the target and to the source recording, against mean-var and the
unconverted source) is its result; nothing the report's test sentences give enters it. Runs are short and
start from scratch (their checkpoints live in a temporary folder). They are independent (each draws its
batches from its own seed and step, :class:`vc.stargan.data.FeatureBank`), so ``diagnosis.workers`` of them
train at once in worker processes that share the cores: on two cores, two one-thread trainings side by side
do more iterations per second than one two-thread training after another. Each run is an MLflow run (kind
``diagnosis``) with its curves; ``<out>/diagnosis.json`` holds every run's curve and final scores for the
report's "Diagnosis" section.

Stage ``contrast`` (params ``contrast``) walks the same way from ``contrast.worse`` to ``contrast.better``
(``<worse>+<switch>`` runs, one difference of the better experiment each) into ``<out>/contrast.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.common import read_params, run, stop_with_parent, without_timings
from vc import cost
from vc.config import ExperimentConfig, Params
from vc.evaluation.validation import ValidationScorer
from vc.features.extract import load_training_matrices
from vc.features.stats import FeatureStats
from vc.io import atomic_dir, write_json
from vc.parallel import PARALLEL_JOBS_ENV, concurrent_jobs, parallel_map, resolve_workers
from vc.stargan.data import FeatureBank
from vc.stargan.trainer import Trainer
from vc.tracking import RunTracker
from vc.training.loop import TrainingInterrupted

log = logging.getLogger("pipeline.diagnosis")

#: The two stages that walk from one experiment to another one switch at a time.
Section = Literal["diagnosis", "contrast"]

#: The result file in each stage's output folder (the report's "Diagnosis" and "Contrast" sections read them).
RESULTS: dict[Section, str] = {"diagnosis": "diagnosis.json", "contrast": "contrast.json"}
#: The keys of each walk's section that name experiments, as they go into its result file.
_NAMES: dict[Section, tuple[str, str]] = {
    "diagnosis": ("experiment", "start"),
    "contrast": ("better", "worse"),
}


def _run(
    params: Params,
    params_path: str,
    section: Section,
    run: str,
    bank: FeatureBank,
    scorer: ValidationScorer,
) -> tuple[dict, float]:
    """Train one run with its validation curve in its own MLflow run: its record for the report, and the
    seconds its training took."""
    exp = params.walk_run(section, run)
    walk = getattr(params, section)
    switch = walk.switches[run.split("+", 1)[1]].as_dict() if "+" in run else {}
    system = params.diagnosis.experiment if section == "diagnosis" else params.contrast.worse
    tracker = RunTracker.for_stage(
        params,
        section,
        f"{section}:{run}",
        params_path,
        kind=section,
        system=system,
        tags={f"vc.{section}_run": run, "vc.seed": str(exp.train.seed)},
        run_params={"run": run, "switch": str(switch), "iterations": exp.train.iterations},
        system_metrics=False,
    )
    with tracker.terminate_on_exit(), tempfile.TemporaryDirectory(prefix=f"{section}-") as checkpoints:
        trainer = Trainer(
            exp,
            bank,
            checkpoints,
            on_log=lambda step, row: tracker.log_metrics(row, step),
            progress=False,
            validator=scorer,
        )
        start = time.perf_counter()
        try:
            trainer.fit(resume=False)
        except TrainingInterrupted as stop:  # SIGINT/SIGTERM: the run ends KILLED, the process 128 + signal
            log.warning("%s: stopped at iteration %d (a walk's run starts over)", exp.name, stop.step)
            raise SystemExit(128 + stop.signum) from stop
        seconds = time.perf_counter() - start
        last = trainer.validation[-1]
        tracker.log_metrics({"train/wall_seconds": seconds})
        record = {
            "run": run,
            "switch": switch,
            "curve": [without_timings(row, digits=5) for row in trainer.validation],
            "val_mcd_db": round(last["val/mcd_db"], 5),
            "val_mcd_db_to_source": round(last["val/mcd_db_to_source"], 5),
            "best_step": trainer.best["step"] if trainer.best else None,
            "best": round(trainer.best["score"], 5) if trainer.best else None,
            "mlflow_run_id": tracker.run_id,
        }
    return record, seconds


@dataclass(frozen=True)
class _RunJob:
    """One run of a walk, as a worker process receives it."""

    params: Params
    params_path: str
    section: Section
    run: str
    features: str
    stats: str
    validation: str
    parallel_jobs: int  # how many jobs share the cores while it trains (VC_PARALLEL_JOBS in its process)


#: The training crops and the validation scorer, loaded once per process (a worker trains several runs).
_INPUTS: dict[tuple[str, str, str, int], tuple[FeatureBank, ValidationScorer]] = {}


def _inputs(job: _RunJob, crop_frames: int) -> tuple[FeatureBank, ValidationScorer]:
    key = (job.features, job.stats, job.validation, crop_frames)
    if key not in _INPUTS:
        stats = FeatureStats.load(job.stats)
        matrices = load_training_matrices(Path(job.features), "train", "world")
        bank = FeatureBank.from_matrices(matrices, stats, crop_frames)
        scorer = ValidationScorer.load(
            job.validation, job.features, stats, job.params.features, job.params.evaluate, sentences=None
        )
        _INPUTS[key] = bank, scorer
    return _INPUTS[key]


def _train_run(job: _RunJob) -> dict[str, Any]:
    """:func:`_run` in whichever process the job lands in: the record, the training's seconds, and what
    the result file says of the validation set (its size and its baselines' scores).

    A worker stops with the stage: the pool's own watch (:mod:`vc.parallel`) SIGTERMs it when the stage is
    gone, and the training saves and stops at the end of its iteration."""
    os.environ[PARALLEL_JOBS_ENV] = str(job.parallel_jobs)  # the Trainer's torch threads: the cores / jobs
    exp = job.params.walk_run(job.section, job.run)
    bank, scorer = _inputs(job, exp.train.crop_frames)
    record, seconds = _run(job.params, job.params_path, job.section, job.run, bank, scorer)
    return {"record": record, "seconds": seconds, "items": len(scorer.items), "baselines": scorer.baselines()}


def _work(exp: ExperimentConfig) -> int:
    """A run's training work in crops through the networks, to start the longest runs first."""
    t = exp.train
    return t.iterations * t.batch_size * (t.d_steps_per_g + 1)


def main(args: argparse.Namespace, section: Section = "diagnosis") -> None:
    stop_with_parent()
    params = read_params(args.params)
    walk = getattr(params, section)
    result = RESULTS[section]
    with atomic_dir(args.out) as tmp:
        if not walk.enabled:
            write_json(tmp / result, {"experiment": None} if section == "diagnosis" else {"better": None})
            log.info("%s.enabled is false: nothing to train", section)
            return
        runs = params.walk_runs(section)
        exps = [params.walk_run(section, run) for run in runs]
        if any(exp.model.features != "world" for exp in exps):
            keys = " or ".join(f"{section}.{key}" for key in _NAMES[section])
            raise ValueError(
                f"{section}: every run must train on WORLD features (the validation MCD scores mel-cepstra); "
                f"{keys} names an experiment on log-mels"
            )
        crops = {exp.train.crop_frames for exp in exps}
        if len(crops) != 1:
            raise ValueError(f"{section}: every run must use one train.crop_frames, got {sorted(crops)}")
        workers = resolve_workers(walk.workers, len(runs))
        jobs = [
            _RunJob(
                params,
                args.params,
                section,
                run,
                args.features,
                args.stats,
                args.validation,
                parallel_jobs=concurrent_jobs() * workers,
            )
            for run in runs
        ]
        iterations = sum(exp.train.iterations for exp in exps)
        log.info("%s: %d runs, %d at once", section, len(runs), workers)
        # the longest runs first (a free worker takes the next), so that no long run starts last
        order = sorted(range(len(runs)), key=lambda i: -_work(exps[i]))
        with cost.phase("runs", count=iterations, unit="iteration"):
            started = parallel_map(_train_run, [jobs[i] for i in order], workers=workers, progress=False)
        done = [out for _, out in sorted(zip(order, started, strict=True), key=lambda pair: pair[0])]
        for exp, out in zip(exps, done, strict=True):
            record = out["record"]
            cost.work(f"{section}/{record['run']}", out["seconds"], exp.train.iterations, "iteration")
            log.info(
                "%s: validation MCD %.2f dB to the target, %.2f dB to the source (%.0f s)",
                exp.name,
                record["val_mcd_db"],
                record["val_mcd_db_to_source"],
                out["seconds"],
            )
        write_json(
            tmp / result,
            {
                **{key: getattr(walk, key) for key in _NAMES[section]},
                "seed": walk.seed,
                "iterations": walk.iterations,
                "validate_every": walk.validate_every,
                "switches": {name: o.as_dict() for name, o in walk.switches.items()},
                "validation_items": done[0]["items"],
                **{k.removeprefix("val/"): round(v, 5) for k, v in done[0]["baselines"].items()},
                "runs": [out["record"] for out in done],
            },
        )


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="the features stage's folder")
    parser.add_argument("--stats", required=True, help="statistics of WORLD-feature models")
    parser.add_argument("--validation", required=True, help="the validation stage's folder")
    parser.add_argument("--out", required=True)
    return parser


if __name__ == "__main__":
    run(main, build_parser())
