"""Params validation: typos, bad values and inconsistent settings are errors naming the key."""

from __future__ import annotations

import json
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
    assert exp.train.lambdas.id == 5.0  # the paper's identity weight; the CPU default is heavier
    assert load_params(raw).experiment("stargan-vc2-no-id").train.lambdas.id == 0  # the ablation still wins
    assert params.experiment("stargan-vc2").model.generator.channels < 128  # the default stays CPU-sized
    assert params.experiment("stargan-vc2").train.lambdas.id > 5.0


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
        ({"preset": None}, "preset", "null is not a preset name: dvc.yaml tracks presets.${preset}"),
        ({"presets": {"paper": {}}}, "preset", "define it as an empty preset, presets: {default: {}}"),
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


def test_diagnosis_runs_add_each_switch_alone_to_the_working_experiment() -> None:
    params = read_params(ROOT / "params.yaml")
    d = params.diagnosis
    runs = params.diagnosis_runs()
    assert runs == [d.start, *(f"+{name}" for name in d.switches), d.experiment]
    start = params.diagnosis_run(d.start)
    assert start.train.iterations == d.iterations and start.train.optimizer.decay_start == d.iterations // 2
    switched = params.diagnosis_run("+wasserstein")
    assert switched.train.adv_loss == "wasserstein" and switched.name == f"{d.start}+wasserstein"
    assert switched.model == start.model and switched.train.optimizer == start.train.optimizer
    record = params.diagnosis_run(d.experiment)
    assert record.train.optimizer.name == "rmsprop" and record.train.batch_size == 2
    assert record.train.iterations == d.iterations
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value, words in (
        ("experiment", "nope", "unknown experiment 'nope'"),
        ("start", "nope", "unknown experiment 'nope'"),
    ):
        bad = {**raw, "diagnosis": {**raw["diagnosis"], key: value}}
        with pytest.raises(ConfigError, match=words) as info:
            load_params(bad)
        assert info.value.key == f"diagnosis.{key}"
    bad = {**raw, "diagnosis": {**raw["diagnosis"], "switches": {"x": {"train": {"adv_loss": "wgan"}}}}}
    with pytest.raises(ConfigError, match="adv_loss"):
        load_params(bad)


def test_contrast_runs_add_each_difference_alone_to_the_worse_experiment() -> None:
    params = read_params(ROOT / "params.yaml")
    c = params.contrast
    assert params.walk_runs("contrast") == [c.worse, *(f"{c.worse}+{name}" for name in c.switches), c.better]
    worse = params.walk_run("contrast", c.worse)
    concat = params.walk_run("contrast", f"{c.worse}+concat-g")
    assert concat.name == f"{c.worse}+concat-g" and concat.train == worse.train
    assert concat.model.generator.conditioning == "concat"
    assert concat.model.discriminator == worse.model.discriminator
    better = params.walk_run("contrast", c.better)
    assert better.model == params.experiment(c.better).model and better.train.iterations == c.iterations
    assert worse.train.optimizer.decay_start == c.iterations // 2 and worse.train.seed == c.seed
    with pytest.raises(ConfigError, match=r"unknown run 'stargan-vc\+concat-g'"):
        params.walk_run("contrast", "stargan-vc+concat-g")  # a switch belongs to the worse experiment
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in ("better", "worse"):
        bad = {**raw, "contrast": {**raw["contrast"], key: "nope"}}
        with pytest.raises(ConfigError, match="unknown experiment 'nope'") as info:
            load_params(bad)
        assert info.value.key == f"contrast.{key}"
    off = load_params({**raw, "contrast": {**raw["contrast"], "enabled": False, "worse": "nope"}})
    assert off.walk_runs("contrast") == []


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


# ------------------------------------------------------------------------------ one set of defaults
def test_library_defaults_are_the_params_yaml_values() -> None:
    """vc.config's defaults are params.yaml's values: a document that states only the data (presets,
    experiments, and what the diagnosis and the contrast run) resolves to exactly what params.yaml resolves
    to, section by section and run by run."""
    from vc.configlib import flatten, to_dict

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    full = load_params(raw)
    data = {k: raw["diagnosis"][k] for k in ("enabled", "experiment", "start", "switches")}  # what it runs
    walk = {k: raw["contrast"][k] for k in ("enabled", "better", "worse", "switches")}
    minimal = load_params(
        {"presets": raw["presets"], "experiments": raw["experiments"], "diagnosis": data, "contrast": walk}
    )
    expected, got = flatten(to_dict(full)), flatten(to_dict(minimal))
    differ = {
        k: (got.get(k), expected.get(k))
        for k in expected.keys() | got.keys()
        if got.get(k) != expected.get(k)
    }
    assert not differ, f"library default -> params.yaml value: {differ}"
    for name in full.experiments:
        for seed in full.seeds:
            assert minimal.experiment(name, seed) == full.experiment(name, seed)
    assert load_params({}).model == full.model and load_params({}).train == full.train


# ------------------------------------------------------------------------------------- JSON Schema
SCHEMA_KEYWORDS = {
    "$schema", "$comment", "$defs", "$ref", "title", "description", "default", "type", "enum", "const",
    "anyOf", "properties", "additionalProperties", "required", "items", "prefixItems", "minItems",
    "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
}  # fmt: skip
JSON_TYPES = {
    "object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
    "boolean": bool, "null": type(None),
}  # fmt: skip


def schema_errors(value: object, schema: dict, root: dict, path: str = "") -> list[str]:
    """A small JSON Schema (2020-12) validator for the keywords pydantic emits (jsonschema is not a
    dependency); returns the failures with their paths."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        if all(schema_errors(value, s, root, path) for s in schema["anyOf"]):
            return [f"{path}: {value!r} matches none of anyOf"]
        return []
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        is_bool = isinstance(value, bool)
        if not any(isinstance(value, JSON_TYPES[t]) and (t == "boolean" or not is_bool) for t in types):
            return [f"{path}: {value!r} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    bounds = {
        "minimum": lambda v, b: v >= b,
        "maximum": lambda v, b: v <= b,
        "exclusiveMinimum": lambda v, b: v > b,
        "exclusiveMaximum": lambda v, b: v < b,
    }
    for word, ok in bounds.items():
        if word in schema and isinstance(value, int | float) and not ok(value, schema[word]):
            errors.append(f"{path}: {value!r} fails {word} {schema[word]}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{key}: unknown key")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], root, f"{path}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                errors += schema_errors(item, sub, root, f"{path}[{i}]")
    return errors


def _keywords(node: object) -> set[str]:
    if isinstance(node, list):
        return set().union(*map(_keywords, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    words = set(node)
    for key, sub in node.items():
        if key in ("properties", "$defs"):
            words |= set().union(*map(_keywords, sub.values())) if sub else set()
        elif key not in ("default", "enum", "const"):
            words |= _keywords(sub)
    return words


def test_params_schema_file_is_current_and_named_by_params_yaml() -> None:
    from vc.config import json_schema

    current = json.loads((ROOT / "params.schema.json").read_text())
    assert current == json_schema(), "params.schema.json is stale: run `make schema`"
    first = (ROOT / "params.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=params.schema.json"
    assert _keywords(current) <= SCHEMA_KEYWORDS, "a keyword schema_errors does not check"


def test_params_schema_accepts_the_params_files_and_rejects_typos() -> None:
    from vc.configlib import deep_merge

    schema = json.loads((ROOT / "params.schema.json").read_text())
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert raw["experiments"] and raw["presets"]  # partial overrides of model and train are checked too
    assert schema_errors(raw, schema, schema) == []
    ci = deep_merge(raw, yaml.safe_load((ROOT / ".ci" / "params.yaml").read_text()))
    assert schema_errors(ci, schema, schema) == []
    for bad, where in [
        ({"train": {"lamdbas": {}}}, ".train.lamdbas: unknown key"),
        ({"train": {"seed": 3}}, ".train.seed: unknown key"),
        ({"train": {"optimizer": {"lr_g": -1}}}, ".train.optimizer.lr_g"),
        ({"model": {"generator": {"topology": "3d"}}}, ".model.generator.topology"),
        ({"experiments": {"x": {"data": {}}}}, ".experiments.x.data: unknown key"),
        ({"experiments": {"x": {"train": {"lambdas": {"cycc": 1}}}}}, ".experiments.x.train.lambdas.cycc"),
        ({"presets": {"paper": {"model": {"generator": {"channels": 0}}}}}, ".presets.paper.model.generator"),
    ]:
        errors = schema_errors(deep_merge(raw, bad), schema, schema)
        assert any(e.startswith(where) for e in errors), (bad, errors)


def test_params_pickle_for_worker_processes() -> None:
    """Presets and experiments are partial models built at import; they pickle like the other sections."""
    import pickle

    params = read_params(ROOT / "params.yaml")
    assert pickle.loads(pickle.dumps(params)) == params


@pytest.mark.parametrize("section", ["TrainConfig", "FinetuneConfig"])
def test_operational_keys_are_keys_of_their_section_and_no_param(section: str) -> None:
    """``OPERATIONAL`` (what a checkpoint fingerprint leaves out) names keys of its section; it is a class
    attribute, not a params key."""
    import vc.config

    cls = getattr(vc.config, section)
    assert cls.OPERATIONAL and set(cls.OPERATIONAL) <= set(cls.model_fields)
    assert "OPERATIONAL" not in cls.model_fields and "OPERATIONAL" not in json.dumps(vc.config.json_schema())


def test_the_embedded_corpus_defaults_are_its_data_module() -> None:
    from vc.config import CorpusConfig
    from vc.corpus.embedded import EMBEDDED_SENTENCES, EMBEDDED_VOICES

    embedded = CorpusConfig().embedded
    assert embedded.sentences == EMBEDDED_SENTENCES and len(EMBEDDED_SENTENCES) == 48
    assert {name: voice.model_dump() for name, voice in embedded.speakers.items()} == EMBEDDED_VOICES
