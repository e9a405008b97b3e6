"""Every DVC stage depends on the project code it runs, so a code change can never leave a stale result
that `dvc repro` calls current; the training checkpoint's fingerprint covers the same code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeline.codedeps import import_closure, module_file

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _entry_module(stage: dict) -> str:
    body = stage.get("do", stage)
    match = re.search(r"python -m (\S+)", body["cmd"])
    assert match, f"no `python -m` entry point in {body['cmd']!r}"
    return match.group(1)


def _covered(file: Path, deps: list[str]) -> bool:
    rel = file.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_import_closure_of_its_entry_point(name: str) -> None:
    stage = STAGES[name]
    deps = [d for d in stage.get("do", stage)["deps"] if not isinstance(d, dict)]
    missing = [
        f.relative_to(ROOT).as_posix() for f in import_closure(_entry_module(stage)) if not _covered(f, deps)
    ]
    assert not missing, f"dvc.yaml stage '{name}' runs code it does not depend on: {missing}"


def test_closure_follows_function_level_and_package_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "vc"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from vc.sub.leaf import x\n")
    (pkg / "sub" / "leaf.py").write_text("x = 1\n")
    (pkg / "lazy.py").write_text("def f():\n    from vc import sub\n    return sub\n")
    (pkg / "unused.py").write_text("")
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "stage.py").write_text("import numpy\nfrom vc.lazy import f\n")
    names = {p.relative_to(tmp_path).as_posix() for p in import_closure("pipeline.stage", tmp_path)}
    assert names == {
        "pipeline/__init__.py",
        "pipeline/stage.py",
        "vc/__init__.py",
        "vc/lazy.py",
        "vc/sub/__init__.py",
        "vc/sub/leaf.py",
    }
    assert module_file("numpy", tmp_path) is None
    with pytest.raises(ValueError, match="not a module"):
        import_closure("pipeline.missing", tmp_path)


def test_training_fingerprint_changes_with_any_module_training_imports(tmp_path: Path) -> None:
    """The checkpoint fingerprint hashes the train stage's whole import closure (stats code included)."""
    import shutil

    from pipeline.train import fingerprint
    from vc.config import load_params

    for name in ("pipeline", "vc"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    exp = load_params({}).experiment("stargan-vc2")
    stats, index = tmp_path / "stats.json", tmp_path / "index.csv"
    stats.write_text("{}")
    index.write_text("speaker\n")
    before = fingerprint(exp, stats, index, tmp_path)
    assert fingerprint(exp, stats, index, tmp_path) == before
    for rel in ("vc/features/stats.py", "vc/config.py", "vc/configlib.py", "pipeline/common.py"):
        with (tmp_path / rel).open("a") as f:
            f.write("\n# changed\n")
        after = fingerprint(exp, stats, index, tmp_path)
        assert after != before, rel
        before = after
    other_seed = load_params({"seeds": [0, 1]}).experiment("stargan-vc2", seed=1)
    assert fingerprint(other_seed, stats, index, tmp_path) != before


def test_dvc_yaml_code_deps_are_the_generated_ones() -> None:
    """`python -m pipeline.codedeps --dvc` writes every stage's code deps; the committed dvc.yaml is its
    output (run it after adding or moving a module)."""
    from pipeline.codedeps import code_deps, rewrite_dvc_yaml

    assert rewrite_dvc_yaml() == (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    deps = code_deps("pipeline.stats")
    assert "vc/features" in deps and "pipeline/stats.py" in deps  # a whole package collapses to its folder
    assert not any(d.startswith("vc/features/") for d in deps)
