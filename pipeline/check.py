"""Validate params.yaml, and what can be checked against the data already prepared, before any stage runs.

Every stage validates the whole params file itself; this command also checks what needs data: corpus folder
and speakers, the training crop against the utterances, conversion pairs against the speakers. `make repro`
runs it first, so a typo costs seconds, not a training run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.common import read_params, repo_root, run
from vc.config import MEL_BASELINES, ConfigError, Params

log = logging.getLogger("pipeline.check")


def check_data(params: Params, root: Path) -> list[str]:
    """Checks against the corpus and features; returns notes on what was checked."""
    notes = []
    corpus = params.corpus
    if corpus.source == "directory":
        from vc.corpus.layouts import scan_corpus

        path = Path(corpus.root or "")
        utts = scan_corpus(path if path.is_absolute() else root / path, corpus.layout, corpus.speakers)
        speakers = list(dict.fromkeys(u.speaker for u in utts))
        notes.append(f"corpus folder: {len(utts)} files of {len(speakers)} speakers")
        if corpus.transcripts is not None:
            from vc.corpus.transcripts import read_transcripts

            path = Path(corpus.transcripts).expanduser()
            transcripts = read_transcripts(path if path.is_absolute() else root / path)
            with_text = sum(bool(transcripts.text(u.speaker, u.utt_id) or u.text) for u in utts)
            notes.append(f"corpus.transcripts: texts for {with_text} of {len(utts)} files")
    else:
        speakers = list(corpus.speakers or corpus.embedded.speakers)
    for i, pair in enumerate(params.convert.pairs):
        for who in pair:
            if who not in speakers:
                raise ConfigError(
                    f"convert.pairs[{i}]", f"unknown speaker '{who}' (speakers: {', '.join(speakers)})"
                )
    mel_systems = [n for n in params.experiments if params.experiment(n).model.features == "mel"]
    mel_systems += [b for b in params.baselines if b in MEL_BASELINES]
    if mel_systems:
        from vc.vocoders.hifigan import VocoderLoadError, pretrained_path

        checkpoint = params.vocoder_config().checkpoint
        try:
            found = pretrained_path() if checkpoint is None else Path(checkpoint).expanduser()
        except VocoderLoadError as err:
            raise ConfigError("vocoder.checkpoint", f"{err} (needed by {', '.join(mel_systems)})") from None
        if not found.is_absolute():
            found = root / found
        if not found.is_file():
            raise ConfigError("vocoder.checkpoint", f"{found}: no such file")
        notes.append(f"HiFi-GAN for {', '.join(mel_systems)}: {found.name}")
    finetune = params.vocoder_config().finetune
    if finetune.iterations:
        notes.append(f"vocoder fine-tuning: {finetune.iterations} iterations on {finetune.device}")
        if finetune.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(
                    "vocoder.finetune.device",
                    "is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')",
                )
    from vc.perceptual.scoring import check_models

    metrics, skipped = check_models(params.evaluate)
    notes.append(
        f"perceptual metrics: {', '.join(metrics) or 'none'}"
        + "".join(f"; {metric} skipped: {why}" for metric, why in skipped.items())
    )
    index_path = root / "data" / "features" / "index.csv"
    if index_path.is_file():
        from vc.features.extract import read_index

        index = read_index(index_path.parent)
        train = index[(index["status"] == "ok") & (index["split"] == "train")]
        for name in params.experiments:
            exp = params.experiment(name)
            column = "mel_frames" if exp.model.features == "mel" else "frames"
            if column not in train:  # features written before log-mels were: the stage re-runs anyway
                continue
            longest = train.groupby("speaker")[column].max()
            crop = exp.train.crop_frames
            too_short = longest[longest < crop]
            if len(too_short):
                spk = too_short.index[0]
                raise ConfigError(
                    f"experiments.{name}.train.crop_frames",
                    f"{crop} frames is longer than every training utterance of speaker '{spk}' "
                    f"(longest: {int(too_short.iloc[0])} {'log-mel ' if column == 'mel_frames' else ''}"
                    "frames)",
                )
        notes.append(f"training crops fit the prepared features of {train['speaker'].nunique()} speakers")
    return notes


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    notes = check_data(params, repo_root())
    log.info(
        "params OK: %d experiments (%s); %s",
        len(params.experiments),
        ", ".join(params.experiments),
        "; ".join(notes) or "no prepared data to check against yet",
    )


if __name__ == "__main__":
    run(main, argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
