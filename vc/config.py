"""Typed configuration: one frozen dataclass per params.yaml section.

Field names are the params.yaml keys; defaults are the library's defaults (params.yaml states every value
explicitly). Section objects map onto constructor keyword arguments: a model is built from
``GeneratorConfig``, never from the whole params object.

Resolution of an experiment (:meth:`Params.experiment`): the base ``model`` and ``train`` sections, then the
``presets[preset]`` overrides (if ``preset`` is set), then ``experiments[name]``'s overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vc.configlib import ConfigError, build, check_overrides, deep_merge, param, to_dict

__all__ = [
    "AudioConfig",
    "ConfigError",
    "ConvertConfig",
    "CorpusConfig",
    "DiscriminatorConfig",
    "EmbeddedCorpusConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "FeaturesConfig",
    "GeneratorConfig",
    "LossWeights",
    "ModelConfig",
    "OptimizerConfig",
    "Params",
    "ReportConfig",
    "SplitConfig",
    "StatsConfig",
    "TrackingConfig",
    "TrainConfig",
    "VoiceConfig",
    "load_params",
]

BASELINES = ("source", "mean-var", "copy-synthesis")
SEED_MESSAGE = "training seeds are the top-level `seeds` list (one run per seed), e.g. seeds: [0, 1]"


# ----------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class AudioConfig:
    """``data:``: how every corpus is prepared before analysis."""

    sample_rate: int = param(22050, ge=8000, le=96000)
    trim_top_db: float | None = param(40.0, gt=0)  # trim leading/trailing audio quieter than peak - top_db
    peak_normalize: float | None = param(0.9, gt=0, le=1.0)  # peak amplitude after preparation; null: off
    silence_dbfs: float = param(-60.0, lt=0)  # a file whose peak is below this is "all silent"


@dataclass(frozen=True)
class VoiceConfig:
    """One synthetic speaker: an eSpeak NG voice name (``language+variant``) and prosody settings."""

    voice: str = "en-us"
    pitch: int = param(50, ge=0, le=100)  # eSpeak base pitch, 0-100
    range: int = param(50, ge=0, le=100)  # eSpeak pitch range, 0-100
    rate: int = param(175, ge=80, le=450)  # words per minute


@dataclass(frozen=True)
class EmbeddedCorpusConfig:
    """The synthesized default corpus: every speaker says every sentence."""

    speakers: dict[str, VoiceConfig] = field(default_factory=dict)
    sentences: tuple[str, ...] = ()
    workers: int = param(0, ge=0)  # synthesis processes; 0: all cores


@dataclass(frozen=True)
class SplitConfig:
    """Train/validation/test split of the sentence ids.

    Validation and test sentences are parallel: the same ids for every speaker, so every conversion has a
    reference utterance of the same sentence by the target speaker (MCD needs one). Validation is for tuning
    and selection; test is what the report scores. Each is given by a count (drawn with ``seed``) or by
    explicit ids.
    """

    test_utterances: int = param(8, ge=1)  # sentence ids held out for the report
    validation_utterances: int = param(6, ge=0)  # sentence ids held out for tuning
    test_ids: tuple[str, ...] = ()  # explicit test ids (override test_utterances)
    validation_ids: tuple[str, ...] = ()  # explicit validation ids (override validation_utterances)
    train_sentences: Literal["shared", "disjoint"] = "shared"  # disjoint: non-parallel training sets
    seed: int = 0

    def check(self) -> list[tuple[str, str]]:
        both = sorted(set(self.test_ids) & set(self.validation_ids))
        if both:
            return [("validation_ids", f"{', '.join(both)} also in test_ids; the splits must be disjoint")]
        return []


@dataclass(frozen=True)
class CorpusConfig:
    """``corpus:``: where the wavs come from and which speakers and utterances are used."""

    source: Literal["embedded", "directory"] = "embedded"
    root: str | None = None  # for source=directory: the corpus folder (absolute or relative to the repo)
    layout: Literal["speaker_dirs", "vctk"] = "speaker_dirs"
    speakers: tuple[str, ...] = ()  # speakers to use; empty: all speakers found
    on_bad_file: Literal["error", "skip"] = "error"
    min_train_utterances: int = param(4, ge=1)
    split: SplitConfig = field(default_factory=SplitConfig)
    embedded: EmbeddedCorpusConfig = field(default_factory=EmbeddedCorpusConfig)
    workers: int = param(0, ge=0)  # preparation processes; 0: all cores

    def check(self) -> list[tuple[str, str]]:
        if self.source == "directory" and not self.root:
            return [("root", "is required when corpus.source is 'directory'")]
        if self.source == "embedded":
            if len(self.embedded.speakers) < 2:
                return [("embedded.speakers", "the embedded corpus needs at least 2 speakers")]
            if len(self.embedded.sentences) < 2:
                return [("embedded.sentences", "the embedded corpus needs at least 2 sentences")]
            unknown = sorted(set(self.speakers) - set(self.embedded.speakers))
            if unknown:
                known = ", ".join(self.embedded.speakers)
                return [("speakers", f"unknown speaker(s) {', '.join(unknown)}; embedded speakers: {known}")]
        if len(set(self.speakers)) != len(self.speakers):
            return [("speakers", "lists a speaker twice")]
        if 0 < len(self.speakers) < 2:
            return [("speakers", "voice conversion needs at least 2 speakers")]
        return []


# ------------------------------------------------------------------------------------------- features
@dataclass(frozen=True)
class FeaturesConfig:
    """``features:``: WORLD analysis (5 ms frames) and the spectral representation the model sees."""

    f0_method: Literal["harvest", "dio"] = "harvest"
    f0_floor: float = param(60.0, gt=0)
    f0_ceil: float = param(500.0, gt=0)
    frame_period: float = param(5.0, gt=0)  # ms
    spectral: Literal["mcep", "coded_sp"] = "mcep"
    mcep_order: int = param(34, ge=1)  # 35 coefficients c0..c34
    mcep_alpha: float | None = param(None, gt=-1, lt=1)  # null: pysptk.util.mcepalpha(fs)
    coded_sp_dim: int = param(36, ge=2)
    workers: int = param(0, ge=0)  # analysis processes; 0: all cores

    def check(self) -> list[tuple[str, str]]:
        if self.f0_ceil <= self.f0_floor:
            return [("f0_ceil", f"must be above f0_floor ({self.f0_floor}), got {self.f0_ceil}")]
        return []

    @property
    def dim(self) -> int:
        """Number of spectral coefficients per frame (the model's feature dimension D)."""
        return self.mcep_order + 1 if self.spectral == "mcep" else self.coded_sp_dim


@dataclass(frozen=True)
class StatsConfig:
    """``stats:``: feature normalisation."""

    scaler: Literal["global", "per_speaker"] = "per_speaker"


# ---------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class GeneratorConfig:
    """Generator hyper-parameters; keyword arguments of :class:`vc.models.Generator`.

    ``channels`` is the width of the first layer; the downsampling blocks use ``2 * channels``, the residual
    blocks ``res_channels`` (null: ``2 * channels``; twice that before their GLU). The paper's widths are
    ``channels: 128``, ``res_blocks: 9`` (residual 256, 512 before GLU).
    """

    topology: Literal["2-1-2d", "2d", "1d"] = "2-1-2d"
    conditioning: Literal["cin_source_target", "cin_target", "concat"] = "cin_source_target"
    channels: int = param(32, ge=1)
    res_blocks: int = param(6, ge=0)
    res_kernel: int = param(5, ge=1)  # 1-D residual kernel (2-1-2d, 1d); the 2d topology uses 3x3
    res_channels: int | None = param(None, ge=1)  # residual width; null: 2 * channels (the paper)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator hyper-parameters; keyword arguments of :class:`vc.models.Discriminator`.

    ``conditioning``: ``source_target`` (StarGAN-VC2 projection on the (source, target) pair), ``target``
    (projection on the target only) or ``classifier`` (StarGAN-VC: target projection plus a separate domain
    classifier trained with a classification loss). Widths: ``channels`` times 1, 2, 4, 8, 8.
    """

    conditioning: Literal["source_target", "target", "classifier"] = "source_target"
    channels: int = param(32, ge=1)
    classifier_channels: int = param(16, ge=1)
    pooling: Literal["sum", "mean"] = "sum"  # global pooling before the output (paper: sum)


@dataclass(frozen=True)
class ModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


# ---------------------------------------------------------------------------------------------- train
@dataclass(frozen=True)
class LossWeights:
    """``train.lambdas``: weight of every loss term by name; the total is their weighted sum."""

    adv: float = param(1.0, ge=0)
    cyc: float = param(10.0, ge=0)
    id: float = param(5.0, ge=0)
    cls: float = param(1.0, ge=0)  # domain classification (only with discriminator.conditioning=classifier)
    fm: float = param(0.0, ge=0)  # discriminator feature matching


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = param(2e-4, gt=0)
    lr_d: float = param(1e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam only
    decay: Literal["linear", "none"] = "linear"
    decay_start: int = param(0, ge=0)  # iteration from which the rates decay linearly to 0 at the end

    def check(self) -> list[tuple[str, str]]:
        for i, b in enumerate(self.betas):
            if not 0 <= b < 1:
                return [(f"betas[{i}]", f"must be in [0, 1), got {b}")]
        return []


@dataclass(frozen=True)
class TrainConfig:
    """``train:``: the training loop."""

    iterations: int = param(2000, ge=1)  # generator updates
    batch_size: int = param(8, ge=1)
    crop_frames: int = param(128, ge=8)
    adv_loss: Literal["lsgan", "hinge", "bce"] = "lsgan"
    lambdas: LossWeights = field(default_factory=LossWeights)
    id_loss_until: int = param(10_000, ge=0)  # identity-mapping loss is used before this iteration only
    d_steps_per_g: int = param(1, ge=1)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seed: int = 0  # set per run from the top-level `seeds` list by Params.experiment
    log_every: int = param(25, ge=1)
    checkpoint_every: int = param(250, ge=1)
    keep_checkpoints: int = param(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = param(0, ge=0)  # torch threads; 0: the CPUs / VC_PARALLEL_JOBS (jobs running at once)
    amp: Literal["none", "bf16"] = "none"  # bf16 autocast (GPU)

    def check(self) -> list[tuple[str, str]]:
        if self.optimizer.decay_start >= self.iterations and self.optimizer.decay == "linear":
            return [("optimizer.decay_start", f"must be below train.iterations ({self.iterations})")]
        return []


@dataclass(frozen=True)
class ExperimentConfig:
    """What one training run is built from: the resolved ``model`` and ``train`` sections."""

    name: str
    model: ModelConfig
    train: TrainConfig

    def check(self) -> list[tuple[str, str]]:
        d = self.model.discriminator
        if d.conditioning == "classifier" and self.train.lambdas.cls == 0:
            return [("train.lambdas.cls", "must be > 0 when discriminator.conditioning is 'classifier'")]
        return []


# ------------------------------------------------------------------------------------ convert, evaluate
@dataclass(frozen=True)
class ConvertConfig:
    """``convert:``: evaluation conversions."""

    vocoder: Literal["world"] = "world"
    split: Literal["test", "validation"] = "test"  # sentences converted and scored (validation: tuning)
    pairs: tuple[tuple[str, str], ...] = ()  # ordered (source, target) pairs; empty: every ordered pair
    max_utterances: int | None = param(None, ge=1)  # sentences per pair (a cap the report states); null: all
    workers: int = param(0, ge=0)  # conversion processes; 0: this job's share of the CPUs

    def check(self) -> list[tuple[str, str]]:
        for i, (src, tgt) in enumerate(self.pairs):
            if src == tgt:
                return [(f"pairs[{i}]", f"target equals source ('{src}'); a pair needs two speakers")]
        return []


@dataclass(frozen=True)
class EvaluateConfig:
    """``evaluate:``: the MCD recipe's free choices (see the README)."""

    power_threshold_db: float = param(-20.0, lt=0)  # drop frames below this power relative to the mean
    bootstrap: int = param(1000, ge=100)  # resamples for the confidence interval
    confidence: float = param(0.95, gt=0, lt=1)
    seed: int = 0
    min_sentences: int = param(5, ge=2)  # fewer distinct sentences than this: no interval is given
    msd_fft: int = param(64, ge=4)  # modulation spectrum: FFT length over frames (5 ms each)
    samples_to_log: int = param(3, ge=0)  # converted wavs per experiment logged to MLflow
    workers: int = param(0, ge=0)  # analysis processes; 0: all cores


@dataclass(frozen=True)
class ReportConfig:
    title: str = "StarGAN-VC2 experiments"
    reference: str | None = "stargan-vc2"  # the experiment every other is compared with (paired); null: none


@dataclass(frozen=True)
class TrackingConfig:
    """``tracking:``: the MLflow experiment (the store is ``MLFLOW_TRACKING_URI`` or the repo's SQLite)."""

    experiment: str = "stargan-vc2"


# --------------------------------------------------------------------------------------------- params
@dataclass(frozen=True)
class Params:
    """The whole of params.yaml."""

    data: AudioConfig = field(default_factory=AudioConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=lambda: {"stargan-vc2": {}})
    seeds: tuple[int, ...] = (0, 1)  # training seeds: every experiment is trained once per seed
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    baselines: tuple[Literal["source", "mean-var", "copy-synthesis"], ...] = BASELINES
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def check(self) -> list[tuple[str, str]]:
        if not self.experiments:
            return [("experiments", "define at least one experiment")]
        if not self.seeds:
            return [("seeds", "list at least one training seed")]
        if len(set(self.seeds)) != len(self.seeds):
            return [("seeds", f"lists a seed twice: {list(self.seeds)}")]
        if self.preset is not None and self.preset not in self.presets:
            known = ", ".join(self.presets) or "none defined"
            return [("preset", f"unknown preset '{self.preset}' (presets: {known})")]
        for name, overrides in self.presets.items():
            _check_run_overrides(overrides, f"presets.{name}")
        for name, overrides in self.experiments.items():
            if set(name) - set("abcdefghijklmnopqrstuvwxyz0123456789-_"):
                return [(f"experiments.{name}", "experiment names use lowercase letters, digits, - and _")]
            _check_run_overrides(overrides, f"experiments.{name}")
            self.experiment(name)  # raises ConfigError with the experiment's key
        if self.report.reference is not None and self.report.reference not in self.experiments:
            known = ", ".join(self.experiments)
            return [("report.reference", f"unknown experiment '{self.report.reference}' (defined: {known})")]
        if self.corpus.source == "embedded":
            speakers = set(self.corpus.speakers or self.corpus.embedded.speakers)
            for i, pair in enumerate(self.convert.pairs):
                for who in pair:
                    if who not in speakers:
                        return [(f"convert.pairs[{i}]", f"unknown speaker '{who}'")]
        return []

    def experiment(self, name: str, seed: int | None = None) -> ExperimentConfig:
        """Resolve experiment ``name``: base sections <- preset <- the experiment's overrides, trained with
        ``seed`` (one of :attr:`seeds`; None: the first)."""
        if name not in self.experiments:
            known = ", ".join(self.experiments)
            raise ConfigError("experiments", f"unknown experiment '{name}' (defined: {known})")
        if seed is not None and seed not in self.seeds:
            raise ConfigError("seeds", f"seed {seed} is not listed (seeds: {list(self.seeds)})")
        base = {"model": to_dict(self.model), "train": to_dict(self.train)}
        if self.preset is not None:
            base = deep_merge(base, self.presets[self.preset])
        merged = deep_merge(base, self.experiments[name])
        merged["train"]["seed"] = self.seeds[0] if seed is None else seed
        try:
            return build(ExperimentConfig, {"name": name, **merged})
        except ConfigError as err:
            raise ConfigError(f"experiments.{name}.{err.key}", err.message) from None


def _check_run_overrides(overrides: Mapping[str, Any], prefix: str) -> None:
    """Presets and experiments may override only the ``model`` and ``train`` sections."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(prefix, f"expected a mapping of overrides, got {overrides!r}")
    for key, value in overrides.items():
        if key == "model":
            check_overrides(ModelConfig, value, f"{prefix}.model")
        elif key == "train":
            check_overrides(TrainConfig, value, f"{prefix}.train")
            if isinstance(value, Mapping) and "seed" in value:
                raise ConfigError(f"{prefix}.train.seed", SEED_MESSAGE)
        else:
            raise ConfigError(f"{prefix}.{key}", "unknown key; experiments override only 'model' and 'train'")


def load_params(data: Mapping[str, Any] | None) -> Params:
    """Validate a parsed params.yaml mapping into :class:`Params` (raises :class:`ConfigError`)."""
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError("", "params must be a mapping of sections")
    train = (data or {}).get("train")
    if isinstance(train, Mapping) and "seed" in train:
        raise ConfigError("train.seed", SEED_MESSAGE)
    return build(Params, data or {})
