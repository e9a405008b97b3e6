"""What every stage shares: the repo root, params.yaml as typed config, logging, clean error exits."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from vc.config import ConfigError, Params, load_params
from vc.errors import InputError

__all__ = ["add_common_args", "read_params", "repo_root", "run", "run_dir"]

log = logging.getLogger("pipeline")


def repo_root() -> Path:
    """The repository the stage belongs to: ``DVC_ROOT`` (set by DVC for stages) or the working directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def run_dir(base: str | Path, experiment: str, seed: int) -> Path:
    """Where one training run's files live under ``base``: ``<base>/<experiment>/seed-<seed>``."""
    return Path(base) / experiment / f"seed-{seed}"


def read_params(path: str | Path = "params.yaml") -> Params:
    """Parse and validate params.yaml (every section: a typo anywhere stops every stage before work)."""
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


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("VC_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )


def run(
    main: Callable[[argparse.Namespace], object],
    parser: argparse.ArgumentParser,
    argv: list[str] | None = None,
) -> None:
    """Parse arguments, set up logging, run ``main``; bad input exits 2 with one clear line, no traceback."""
    add_common_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("matplotlib", "PIL", "numba", "urllib3", "alembic", "git", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main(args)
    except InputError as err:
        log.error("%s", err)
        sys.exit(2)
