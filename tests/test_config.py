"""Params validation: typos, bad values and inconsistent settings are errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.common import read_params
from vc.config import ConfigError, load_params

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_are_valid_and_define_the_default_experiments() -> None:
    params = read_params(ROOT / "params.yaml")
    assert {"stargan-vc2", "stargan-vc2-no-id", "stargan-vc"} <= set(params.experiments)
    assert params.experiment("stargan-vc2-no-id").train.lambdas.id == 0
    vc1 = params.experiment("stargan-vc")
    assert vc1.model.discriminator.conditioning == "classifier"
    assert vc1.model.generator.conditioning == "concat"
    assert len(params.corpus.embedded.speakers) >= 4 and len(params.corpus.embedded.sentences) >= 40


def test_ci_params_merge_into_valid_params() -> None:
    from vc.configlib import deep_merge

    merged = deep_merge(
        yaml.safe_load((ROOT / "params.yaml").read_text()),
        yaml.safe_load((ROOT / ".ci" / "params.yaml").read_text()),
    )
    params = load_params(merged)
    assert params.train.iterations <= 50 and params.model.generator.channels <= 8
    assert params.report.title.startswith("StarGAN-VC2 pipeline, CI configuration")
    assert set(params.experiments) == set(read_params(ROOT / "params.yaml").experiments)


def test_paper_preset_has_the_paper_widths() -> None:
    params = read_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["preset"] = "paper"
    exp = load_params(raw).experiment("stargan-vc2")
    assert (exp.model.generator.channels, exp.model.generator.res_blocks) == (128, 9)
    assert exp.train.iterations == 100_000
    assert params.experiment("stargan-vc2").model.generator.channels < 128  # the default stays CPU-sized


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"trian": {}}, "trian", "did you mean 'train'"),
        ({"train": {"optimizer": {"lr_g": -1e-4}}}, "train.optimizer.lr_g", "must be > 0"),
        ({"train": {"batch_size": "eight"}}, "train.batch_size", "expected an integer"),
        ({"features": {"spectral": "mfcc"}}, "features.spectral", "not one of"),
        ({"features": {"f0_floor": 300, "f0_ceil": 200}}, "features.f0_ceil", "above f0_floor"),
        (
            {"experiments": {"x": {"train": {"lambdas": {"cycc": 1}}}}},
            "experiments.x.train.lambdas.cycc",
            "did you mean 'cyc'",
        ),
        (
            {"experiments": {"x": {"train": {"optimizer": {"lr_d": -1}}}}},
            "experiments.x.train.optimizer.lr_d",
            "must be > 0",
        ),
        ({"experiments": {"x": {"data": {}}}}, "experiments.x.data", "override only"),
        (
            {
                "experiments": {
                    "x": {
                        "model": {"discriminator": {"conditioning": "classifier"}},
                        "train": {"lambdas": {"cls": 0}},
                    }
                }
            },
            "experiments.x.train.lambdas.cls",
            "> 0",
        ),
        ({"preset": "huge"}, "preset", "unknown preset"),
        ({"convert": {"pairs": [["a", "a"]]}}, "convert.pairs[0]", "target equals source"),
        ({"corpus": {"source": "directory"}}, "corpus.root", "required"),
        (
            {
                "corpus": {
                    "speakers": ["nobody"],
                    "embedded": {"speakers": {"a": {}, "b": {}}, "sentences": ["x", "y"]},
                }
            },
            "corpus.speakers",
            "unknown speaker",
        ),
        (
            {"train": {"iterations": 100, "optimizer": {"decay_start": 200}}},
            "train.optimizer.decay_start",
            "below train.iterations",
        ),
    ],
)
def test_bad_params_name_the_key(data: dict, key: str, words: str) -> None:
    data.setdefault("corpus", {}).setdefault(
        "embedded", {"speakers": {"a": {}, "b": {}}, "sentences": ["x", "y"]}
    )
    with pytest.raises(ConfigError) as info:
        load_params(data)
    assert info.value.key == key
    assert words in str(info.value) and key in str(info.value)


def test_unknown_experiment_name_is_rejected() -> None:
    params = read_params(ROOT / "params.yaml")
    with pytest.raises(ConfigError, match=r"unknown experiment 'stargan-vc3'.*stargan-vc2"):
        params.experiment("stargan-vc3")


def test_read_params_names_the_file_for_invalid_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: not valid YAML"):
        read_params(bad)
    with pytest.raises(ConfigError, match="no params file"):
        read_params(tmp_path / "missing.yaml")
