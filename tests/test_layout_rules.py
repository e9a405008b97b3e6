"""Rules of the code's shape that a reader relies on: short functions and modules, imports that only run down
the layers, every stage path stated once (in dvc.yaml), registries that match the config's choices."""

from __future__ import annotations

import ast
import importlib
import shlex
from pathlib import Path
from typing import get_args

import pytest
import yaml

from pipeline.codedeps import import_closure, module_file

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
LONG_MODULES = {"vc/config.py"}  # one pydantic model per params section


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for path in _sources("vc", "pipeline"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{_rel(path)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_library_module_is_longer_than_500_lines() -> None:
    long = [
        f"{_rel(p)} ({n} lines)"
        for p in _sources("vc")
        if _rel(p) not in LONG_MODULES
        and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


@pytest.mark.parametrize("package", ["vc/features", "vc/corpus", "vc/training"])
def test_lower_layers_import_no_model_family_evaluation_or_report(package: str) -> None:
    """Corpus, features and the shared loop stay below the wings: nothing they import, directly or not,
    lazily or not, is a model family, a vocoder, evaluation or report code."""
    above = (
        "vc/stargan/",
        "vc/vocoders/",
        "vc/evaluation/",
        "vc/report/",
        "vc/baselines.py",
        "vc/conversion.py",
    )
    for path in _sources(package):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        reached = [_rel(f) for f in import_closure(module) if _rel(f).startswith(above)]
        assert not reached, f"{module} imports {reached}"


def test_the_embedded_corpus_is_data_only() -> None:
    tree = ast.parse((ROOT / "vc/corpus/embedded.py").read_text(encoding="utf-8"))
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in imports)


def test_every_corpus_layout_has_its_scan_function() -> None:
    from vc.config import CorpusConfig
    from vc.corpus.layouts import LAYOUTS

    assert set(LAYOUTS) == set(get_args(CorpusConfig.model_fields["layout"].annotation))


def _stage_commands() -> list[tuple[str, str, list[str]]]:
    """``(stage, module, arguments)`` of each dvc.yaml stage whose module declares its parser."""
    found = []
    for name, stage in sorted(STAGES.items()):
        cmd = stage.get("do", stage)["cmd"]
        words = shlex.split(cmd.replace("${item.experiment}", "x").replace("${item.seed}", "0"))
        module = words[words.index("-m") + 1]
        tree = ast.parse(module_file(module).read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "build_parser" for n in tree.body):
            found.append((name, module, words[words.index("-m") + 2 :]))
    return found


@pytest.mark.parametrize(
    ("stage", "module", "args"), _stage_commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_dvc_yaml_states_every_path_a_stage_takes(stage: str, module: str, args: list[str]) -> None:
    """Stage paths have no defaults of their own: dvc.yaml is the one place that states them, and passes
    every one (the parser stops on a missing one). Cost files are not stage paths (never a dependency or an
    output): :func:`vc.cost.cost_path` places them, and the report reads them from there unless told."""
    parser = importlib.import_module(module).build_parser()
    optional = {"help", "seed", "costs"}  # --seed: the first of `seeds` when not given
    for action in parser._actions:
        if action.dest not in optional:
            assert action.required, f"{module} --{action.dest} has a default; dvc.yaml should state it"
    parsed = parser.parse_args(args)
    assert all(getattr(parsed, a.dest) is not None for a in parser._actions if a.required), stage
