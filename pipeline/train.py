"""Stage `train@<experiment>-<seed>`: train one experiment with one seed, resuming from its checkpoints;
record it in MLflow.

Outputs in ``models/<experiment>/seed-<seed>/``: ``model/`` (weights, config, statistics: all conversion
needs), ``losses.tsv`` (DVC plots) and ``train.json`` (the MLflow run id, wall time, final losses).
Checkpoints go to ``checkpoints/<experiment>/seed-<seed>/``, outside DVC's outputs: an interrupted stage
resumes from them, and a DVC experiment's temporary workspace (which lacks them) trains from the start,
since DVC only re-runs this stage when its params, code or data changed.

Multi-process training: ``torchrun --nproc_per_node N -m pipeline.train --experiment NAME``, or set
``VC_NPROC_PER_NODE=N`` and this stage starts torchrun itself (so ``dvc repro`` trains on N GPUs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import vc
from pipeline.codedeps import import_closure
from pipeline.common import read_params, repo_root, run, run_dir
from vc.config import ExperimentConfig, Params
from vc.configlib import flatten, to_dict
from vc.features.extract import load_training_matrices
from vc.features.stats import FeatureStats
from vc.io import write_json, write_text
from vc.model_store import save_model
from vc.tracking import RunTracker, git_commit, group_tag
from vc.training.data import FeatureBank
from vc.training.distributed import DistContext
from vc.training.trainer import Trainer, TrainingInterrupted, TrainState

log = logging.getLogger("pipeline.train")

# Settings that change how a run is executed or logged, not what it computes: a checkpoint stays valid.
OPERATIONAL = ("log_every", "checkpoint_every", "keep_checkpoints", "device", "num_threads")
CODE_ROOT = Path(__file__).resolve().parents[1]


def fingerprint(
    exp: ExperimentConfig, stats_path: Path, index_path: Path, code_root: Path = CODE_ROOT
) -> str:
    """Hash of what training depends on: the experiment's math (seed included), the data it sees and the
    code this stage runs (every project module it imports, :func:`pipeline.codedeps.import_closure`).

    A checkpoint resumes only when its fingerprint equals the current one, so `dvc repro` after an
    interruption continues, and `dvc repro` after a change of params, data or code trains from step 0.
    """
    cfg = to_dict(exp)
    for key in OPERATIONAL:
        cfg["train"].pop(key)
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode())
    h.update(stats_path.read_bytes())
    h.update(index_path.read_bytes())
    for file in import_closure("pipeline.train", code_root):
        h.update(file.relative_to(code_root).as_posix().encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def mlflow_params(params: Params, exp: ExperimentConfig) -> dict[str, object]:
    """Every resolved param under stable names (the same keys for every experiment)."""
    corpus = to_dict(params.corpus)
    corpus["embedded"]["sentences"] = len(params.corpus.embedded.sentences)
    return {
        "experiment": exp.name,
        "preset": params.preset,
        **flatten({"model": to_dict(exp.model), "train": to_dict(exp.train)}),
        **flatten(
            {
                "data": to_dict(params.data),
                "corpus": corpus,
                "features": to_dict(params.features),
                "stats": to_dict(params.stats),
            }
        ),
    }


def write_losses_tsv(path: Path, history: list[dict[str, float]]) -> None:
    keys = list(dict.fromkeys(k for row in history for k in row))
    lines = ["\t".join(keys)] + ["\t".join(f"{row.get(k, '')}" for k in keys) for row in history]
    write_text(path, "\n".join(lines) + "\n")


def stop_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies.

    ``dvc repro`` dies on SIGTERM without passing it on, which would leave training running as an orphan;
    with this, a SIGTERM to DVC reaches training, which checkpoints and stops (Ctrl-C reaches both anyway).
    DVC starts stages through ``$SHELL -c``, and dash (``/bin/sh`` on Debian) stays in between as the
    parent, so the stage command in dvc.yaml begins with ``exec``.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def _relaunch_with_torchrun(nproc: int) -> None:
    """Run this very command under torchrun with ``nproc`` processes (no shell; arguments pass as a list).

    SIGINT and SIGTERM are passed on to torchrun, which passes them to every rank.
    """
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "pipeline.train",
        *sys.argv[1:],
    ]
    log.info("starting %d training processes with torchrun", nproc)
    child = subprocess.Popen(cmd)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    sys.exit(child.wait())


def start_run(params: Params, exp: ExperimentConfig, params_path: Path) -> RunTracker:
    """The experiment's MLflow run, under this `dvc repro`'s group, with every resolved param."""
    commit = git_commit()
    tags = {
        "vc.experiment": exp.name,
        "vc.seed": str(exp.train.seed),
        "vc.stage": "train",
        "mlflow.source.git.commit": commit or "",
        "vc.version": vc.__version__,
    }
    return RunTracker.start(
        params.tracking.experiment,
        f"{exp.name}/seed-{exp.train.seed}",
        tags=tags,
        params=mlflow_params(params, exp),
        root=repo_root(),
        parent_group=group_tag(params_path.read_text(), commit),
    )


def export(
    out: Path,
    state: TrainState,
    exp: ExperimentConfig,
    params: Params,
    stats: FeatureStats,
    tracker: RunTracker,
    wall: float,
    processes: int,
) -> None:
    """The stage's outputs (model folder, loss curves, summary), also logged to the MLflow run."""
    final = state.history[-1] if state.history else {}
    save_model(
        out / "model",
        state.generator,
        exp,
        params.features,
        stats,
        info={"iterations": state.step, "mlflow_run_id": tracker.run_id},
    )
    write_losses_tsv(out / "losses.tsv", state.history)
    write_json(
        out / "train.json",
        {
            "experiment": exp.name,
            "seed": exp.train.seed,
            "mlflow_run_id": tracker.run_id,
            "iterations": state.step,
            "wall_seconds": round(wall, 1),
            "processes": processes,
            "final": {k: round(v, 5) for k, v in final.items() if k != "step"},
        },
    )
    tracker.log_metrics({"train/wall_seconds": wall})
    tracker.log_artifacts(out / "model", "model")
    tracker.log_artifact(out / "losses.tsv")


def main(args: argparse.Namespace) -> TrainState:
    """Train (or resume) the experiment; return the final state (on every rank)."""
    stop_with_parent()
    nproc = int(os.environ.get("VC_NPROC_PER_NODE", "1"))
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        _relaunch_with_torchrun(nproc)
    params = read_params(args.params)
    exp = params.experiment(args.experiment, args.seed)
    out = Path(args.out) if args.out else run_dir("models", exp.name, exp.train.seed)
    checkpoints = (
        Path(args.checkpoints) if args.checkpoints else run_dir("checkpoints", exp.name, exp.train.seed)
    )
    features = Path(args.features)
    kind = exp.model.features
    stats_path = Path(args.mel_stats if kind == "mel" else args.stats)
    stats = FeatureStats.load(stats_path)
    bank = FeatureBank.from_matrices(
        load_training_matrices(features, "train", kind), stats, exp.train.crop_frames
    )
    dist = DistContext.from_env()
    tracker = start_run(params, exp, Path(args.params)) if dist.is_main else None
    trainer = Trainer(
        exp,
        bank,
        checkpoints,
        dist=dist,
        fingerprint=fingerprint(exp, stats_path, features / "index.csv"),
        on_log=(lambda step, row: tracker.log_metrics(row, step)) if tracker else None,
    )
    start = time.perf_counter()
    try:
        if trainer.maybe_resume() and tracker is not None:
            # the new run holds the whole curve: the rows before the interruption, then the rest
            tracker.set_tags({"vc.resumed_from_iteration": trainer.state.step})
            tracker.log_metric_rows(
                [(int(r["step"]), {k: v for k, v in r.items() if k != "step"}) for r in trainer.state.history]
            )
        state = trainer.fit(resume=False)
    except TrainingInterrupted as stop:
        log.warning("%s", stop)
        if tracker is not None:
            tracker.end("KILLED")
        dist.close()
        sys.exit(128 + stop.signum)
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        dist.close()
        raise
    wall = time.perf_counter() - start
    if tracker is not None:
        export(out, state, exp, params, stats, tracker, wall, dist.world_size)
        tracker.end("FINISHED")
        log.info(
            "trained %s: %d iterations in %.0f s; MLflow run %s", exp.name, state.step, wall, tracker.run_id
        )
    dist.close()
    return state


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True, help="a name under `experiments:` in params.yaml")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--stats", default="data/stats.json", help="statistics of WORLD-feature models")
    parser.add_argument("--mel-stats", default="data/stats-mel.json", help="statistics of log-mel models")
    parser.add_argument(
        "--seed", type=int, default=None, help="one of `seeds` in params.yaml (default: the first)"
    )
    parser.add_argument("--out", default=None, help="default: models/<experiment>/seed-<seed>")
    parser.add_argument("--checkpoints", default=None, help="default: checkpoints/<experiment>/seed-<seed>")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
