"""The project code a stage runs: the import closure of its entry module within `vc` and `pipeline`.

Read from the source text (every ``import`` statement, function-level ones included), never by importing,
so it sees lazy imports too and costs milliseconds. Used by the training checkpoint's fingerprint (a
checkpoint made by other code is stale) and by the test that every stage's ``deps`` in dvc.yaml cover the
code it runs.

    python -m pipeline.codedeps pipeline.train      # list the files
    python -m pipeline.codedeps --dvc               # rewrite every stage's code deps in dvc.yaml
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "PROJECT_PACKAGES",
    "ROOT",
    "code_deps",
    "hash_code",
    "import_closure",
    "module_file",
    "rewrite_dvc_yaml",
]

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("vc", "pipeline")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of project module ``name`` (``a/b.py`` or ``a/b/__init__.py``), or None."""
    if name.split(".", maxsplit=1)[0] not in PROJECT_PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_names(path: Path) -> set[str]:
    """Absolute module names an ``import`` in ``path`` may load (``from a import b``: ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@cache
def _closure(module: str, root: Path) -> frozenset[Path]:
    todo, seen = [module], set()
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            path = module_file(".".join(parts[:i]), root)
            if path is not None and path not in files:
                files.add(path)
                todo.extend(_imported_names(path))
    return frozenset(files)


def import_closure(module: str, root: Path = ROOT) -> list[Path]:
    """Every project source file that running ``python -m module`` can import, sorted.

    Raises:
        ValueError: when ``module`` is not a project module.
    """
    if module_file(module, root) is None:
        raise ValueError(f"{module}: not a module of {', '.join(PROJECT_PACKAGES)} under {root}")
    return sorted(_closure(module, root.resolve()))


def hash_code(digest: Any, module: str, root: Path = ROOT) -> None:
    """Feed ``digest`` (a :mod:`hashlib` object) the path and bytes of every file of ``module``'s import
    closure: what a checkpoint fingerprint needs so that other code never resumes it."""
    root = root.resolve()
    for file in import_closure(module, root):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(file.read_bytes())


def code_deps(module: str, root: Path = ROOT) -> list[str]:
    """The import closure of ``module`` as dvc.yaml deps: a package folder whose every source file is in
    the closure is listed as the folder, other files one by one (package order, then name)."""
    root = root.resolve()
    files = {f.relative_to(root) for f in import_closure(module, root)}
    folders = sorted(
        {f.parent for f in files if f.parent.parent != Path(".") and f.parent.name != "pipeline"},
        key=lambda d: len(d.parts),
    )
    whole: list[Path] = []
    for folder in folders:
        if any(folder.is_relative_to(w) for w in whole):
            continue
        if all(f.relative_to(root) in files for f in (root / folder).rglob("*.py")):
            whole.append(folder)
    deps = [f for f in files if not any(f.is_relative_to(w) for w in whole)] + whole
    return sorted((d.as_posix() for d in deps), key=lambda d: (not d.startswith("pipeline/"), d))


def rewrite_dvc_yaml(path: Path = ROOT / "dvc.yaml") -> str:
    """dvc.yaml with each stage's code deps (``pipeline/...``, ``vc/...`` lines of its ``deps:``) replaced
    by :func:`code_deps` of its entry module; data deps and comments are kept in place."""
    out: list[str] = []
    module = None
    in_deps = False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        found = re.search(r"python -m (pipeline\.\w+)", line)
        if found:
            module = found.group(1)
        if stripped == "deps:":
            in_deps = True
            out.append(line)
            indent = line[: len(line) - len(line.lstrip())] + "  "
            out += [f"{indent}- {d}" for d in code_deps(module)] if module else []
            continue
        if in_deps and stripped.startswith("- "):
            if stripped[2:].startswith(("pipeline/", "vc/")):
                continue
            out.append(line)
            continue
        in_deps = False
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--dvc"]:
        (ROOT / "dvc.yaml").write_text(rewrite_dvc_yaml(), encoding="utf-8")
    else:
        for file in import_closure(sys.argv[1]):
            sys.stdout.write(f"{file.relative_to(ROOT)}\n")
