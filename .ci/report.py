"""Regenerate reports/ with the CI params (.ci/params.yaml) in a temporary copy of the repository; check it.

    python .ci/report.py --out ci-report

Copies the repository's files (tracked and untracked-not-ignored, dvc.lock aside), merges .ci/params.yaml into
params.yaml, runs `dvc repro` from scratch, checks that the report has every experiment and baseline with
finite numbers, and copies the regenerated reports/ and `dvc metrics show --md` to --out.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vc.config import load_params  # noqa: E402
from vc.configlib import deep_merge  # noqa: E402
from vc.report.build import check_report  # noqa: E402

log = logging.getLogger("ci.report")


def project_files(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="ci-report")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument(
        "--params",
        default=str(ROOT / ".ci" / "params.yaml"),
        help="overrides of params.yaml (default: .ci/params.yaml; benchmarks/gpu.sh gives its own)",
    )
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "MLFLOW_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    work = Path(tempfile.mkdtemp(prefix="vc-ci-"))
    try:
        # Every stage runs anyway (other params); without the main run's lock, DVC rewrites a lock that grows
        # from empty instead of the main run's 12,000 lines after each of the ~40 stages (about 1 s each).
        for rel in (f for f in project_files(ROOT) if f != "dvc.lock"):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, work / rel)
        overrides = yaml.safe_load(Path(args.params).read_text())
        params = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
        if "experiments" in overrides:  # the experiments named there, not added to the default ones
            params["experiments"] = overrides["experiments"]
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        loaded = load_params(params)
        for cmd in (
            ["git", "init", "-q"],
            ["git", "add", "-A"],
            ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "ci"],
        ):
            subprocess.run(cmd, cwd=work, check=True, capture_output=True)
        log.info("dvc repro in %s", work)
        subprocess.run([str(bin_dir / "dvc"), "repro"], cwd=work, env=env, check=True)
        check_report(work / "reports", [*loaded.experiments, *loaded.baselines])
        out = Path(args.out).resolve()
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(work / "reports", out)
        metrics = subprocess.run(
            [str(bin_dir / "dvc"), "metrics", "show", "--md"],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (out / "metrics.md").write_text(metrics)
        log.info("report regenerated and checked: %s", out / "report.md")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
