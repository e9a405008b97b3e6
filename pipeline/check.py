"""Validate params.yaml, and what can be checked against the data already prepared, before any stage runs.

Every stage validates the whole params file itself; this command also checks what needs data: corpus folder
and speakers, conversion pairs against the speakers, the HiFi-GAN checkpoint mel systems need, the
perceptual metrics' models, the training crop against the utterances. `make repro` runs it first, so a typo
costs seconds, not a training run. Each check is one function that returns a note on what it checked (or
None when it had nothing to check) and raises :class:`vc.config.ConfigError` naming the key.
"""

from __future__ import annotations

import argparse
import functools
import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import yaml

from pipeline.common import read_params, repo_root, run
from vc.baselines import BASELINES
from vc.config import ConfigError, Params
from vc.conversion import vocoder_for
from vc.corpus.layouts import SourceUtterance, scan_corpus
from vc.corpus.selection import check_pairs

log = logging.getLogger("pipeline.check")

Check = Callable[[Params, Path], str | None]


def _resolve(path: str, root: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p


def stage_output(root: Path, stage: str, option: str = "--out") -> Path | None:
    """The folder dvc.yaml passes to ``stage`` as ``option`` (dvc.yaml states every stage path once);
    None without a dvc.yaml or such an option."""
    dvc_yaml = root / "dvc.yaml"
    if not dvc_yaml.is_file():
        return None
    cmd = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"].get(stage) or {}).get("cmd", "")
    words = shlex.split(cmd)
    return root / words[words.index(option) + 1] if option in words[:-1] else None


@functools.cache
def _scan(folder: Path, layout: str, speakers: tuple[str, ...]) -> tuple[SourceUtterance, ...]:
    """The corpus folder's utterances, scanned once for every check that needs them."""
    return tuple(scan_corpus(folder, layout, speakers))


def corpus_utterances(params: Params, root: Path) -> tuple[SourceUtterance, ...]:
    """The utterances of a ``directory`` corpus (its folder must exist, in its layout)."""
    corpus = params.corpus
    return _scan(_resolve(corpus.root or "", root), corpus.layout, corpus.speakers)


def corpus_speakers(params: Params, root: Path) -> list[str]:
    """The speakers the corpus stage will prepare: the corpus folder's, or the embedded ones."""
    corpus = params.corpus
    if corpus.source == "embedded":
        return list(corpus.speakers or corpus.embedded.speakers)
    return list(dict.fromkeys(u.speaker for u in corpus_utterances(params, root)))


def check_corpus(params: Params, root: Path) -> str | None:
    """A corpus folder exists in its layout, with the configured speakers."""
    if params.corpus.source != "directory":
        return None
    utts = corpus_utterances(params, root)
    return f"corpus folder: {len(utts)} files of {len(corpus_speakers(params, root))} speakers"


def check_transcripts(params: Params, root: Path) -> str | None:
    """``corpus.transcripts`` is readable; how many of the corpus files it gives a text."""
    corpus = params.corpus
    if corpus.source != "directory" or corpus.transcripts is None:
        return None
    from vc.corpus.transcripts import read_transcripts

    utts = corpus_utterances(params, root)
    transcripts = read_transcripts(_resolve(corpus.transcripts, root))
    with_text = sum(bool(transcripts.text(u.speaker, u.utt_id) or u.text) for u in utts)
    return f"corpus.transcripts: texts for {with_text} of {len(utts)} files"


def check_speaker_pairs(params: Params, root: Path) -> str | None:
    """Every ``convert.pairs`` entry names two of the corpus's speakers (the one pair check,
    :func:`vc.corpus.selection.check_pairs`, which the conversion plan runs too)."""
    if not params.convert.pairs:
        return None
    speakers = corpus_speakers(params, root)
    for i, pair in enumerate(params.convert.pairs):
        key = f"convert.pairs[{i}]"
        try:
            check_pairs((pair,), speakers, key=key)
        except ValueError as err:
            raise ConfigError(key, str(err).removeprefix(f"{key}: ")) from None
    return f"convert.pairs: {len(params.convert.pairs)} pair(s) of the corpus's speakers"


def mel_systems(params: Params) -> list[str]:
    """The experiments and baselines whose wavs HiFi-GAN makes."""
    experiments = [
        n for n in params.experiments if vocoder_for(params.experiment(n).model.features) == "hifigan"
    ]
    return experiments + [b for b in params.baselines if BASELINES[b].vocoder == "hifigan"]


def check_vocoder_checkpoint(params: Params, root: Path) -> str | None:
    """The HiFi-GAN generator checkpoint exists when a system needs it."""
    systems = mel_systems(params)
    if not systems:
        return None
    from vc.vocoders.hifigan import VocoderLoadError, pretrained_path

    checkpoint = params.vocoder_config().checkpoint
    try:
        found = pretrained_path() if checkpoint is None else _resolve(checkpoint, root)
    except VocoderLoadError as err:
        raise ConfigError("vocoder.checkpoint", f"{err} (needed by {', '.join(systems)})") from None
    if not found.is_file():
        raise ConfigError("vocoder.checkpoint", f"{found}: no such file")
    return f"HiFi-GAN for {', '.join(systems)}: {found.name}"


def check_finetune_device(params: Params, root: Path) -> str | None:
    """Vocoder fine-tuning on ``cuda`` needs a CUDA device here."""
    finetune = params.vocoder_config().finetune
    if not finetune.iterations:
        return None
    if finetune.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "vocoder.finetune.device", "is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')"
            )
    return f"vocoder fine-tuning: {finetune.iterations} iterations on {finetune.device}"


def check_perceptual_models(params: Params, root: Path) -> str | None:
    """Which perceptual metrics have their models installed; the others are skipped, with the reason."""
    from vc.evaluation.perceptual.material import check_models

    metrics, skipped = check_models(params.evaluate)
    return f"perceptual metrics: {', '.join(metrics) or 'none'}" + "".join(
        f"; {metric} skipped: {why}" for metric, why in skipped.items()
    )


def check_training_crops(params: Params, root: Path) -> str | None:
    """Each experiment's training crop fits in the longest training utterance of every speaker, in the
    frames its model sees (WORLD frames, or log-mel frames), once the features are prepared."""
    features = stage_output(root, "features")
    index_path = features / "index.csv" if features is not None else None
    if index_path is None or not index_path.is_file():
        return None
    from vc.features.extract import read_index

    index = read_index(index_path.parent)
    train = index[(index["status"] == "ok") & (index["split"] == "train")]
    for name in params.experiments:
        exp = params.experiment(name)
        column = "mel_frames" if exp.model.features == "mel" else "frames"
        if column not in train:  # features written before log-mels were: the stage re-runs anyway
            continue
        longest = train.groupby("speaker")[column].max()
        too_short = longest[longest < exp.train.crop_frames]
        if len(too_short):
            raise ConfigError(
                f"experiments.{name}.train.crop_frames",
                f"{exp.train.crop_frames} frames is longer than every training utterance of speaker "
                f"'{too_short.index[0]}' (longest: {int(too_short.iloc[0])} "
                f"{'log-mel ' if column == 'mel_frames' else ''}frames)",
            )
    return f"training crops fit the prepared features of {train['speaker'].nunique()} speakers"


def check_diagnosis_names(params: Params, root: Path) -> str | None:
    """``diagnosis.experiment``, ``diagnosis.start``, ``contrast.better`` and ``contrast.worse`` name
    experiments even when their stage is off: dvc.yaml tracks those experiments' params for the
    ``diagnosis`` and ``contrast`` stages, and DVC stops on a missing key."""
    d, c = params.diagnosis, params.contrast
    names = (
        ("diagnosis", "experiment", d.experiment),
        ("diagnosis", "start", d.start),
        ("contrast", "better", c.better),
        ("contrast", "worse", c.worse),
    )
    for section, key, name in names:
        if name not in params.experiments:
            raise ConfigError(
                f"{section}.{key}",
                f"'{name}' is not under experiments (defined: {', '.join(params.experiments)}); dvc.yaml "
                f"tracks its params for the {section} stage, so name one of them even with enabled: false",
            )
    return (
        f"diagnosis: {'on' if d.enabled else 'off'} ({d.experiment}, switches added to {d.start}); "
        f"contrast: {'on' if c.enabled else 'off'} ({c.better} against {c.worse})"
    )


#: Every check, in the order it runs.
CHECKS: tuple[Check, ...] = (
    check_diagnosis_names,
    check_corpus,
    check_transcripts,
    check_speaker_pairs,
    check_vocoder_checkpoint,
    check_finetune_device,
    check_perceptual_models,
    check_training_crops,
)


def check_data(params: Params, root: Path) -> list[str]:
    """Run every check against the corpus and features under ``root``; the notes of those that ran."""
    return [note for check in CHECKS if (note := check(params, root)) is not None]


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
