"""Figures for reports and MLflow (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vc.io import atomic_path

__all__ = ["plot_loss_curves", "plot_mcd_bars", "plot_mcep_panels", "plot_validation_curves"]


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)


def plot_mcep_panels(
    panels: Mapping[str, np.ndarray], title: str, path: str | Path, frame_period_ms: float = 5.0
) -> None:
    """Mel-cepstrograms side by side (e.g. source, converted, target); each ``(T, D)`` without c0."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), sharey=True)
    axes = np.atleast_1d(axes)
    lim = max(np.percentile(np.abs(m), 99) for m in panels.values())
    for ax, (name, mcep) in zip(axes, panels.items(), strict=True):
        extent = (0, mcep.shape[0] * frame_period_ms / 1000, 1, mcep.shape[1])
        im = ax.imshow(
            mcep.T, origin="lower", aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim, extent=extent
        )
        ax.set_title(name)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("mel-cepstral coefficient")
    fig.colorbar(im, ax=axes.tolist(), shrink=0.8)
    fig.suptitle(title, y=1.04)
    _save(fig, path)


def plot_mcd_bars(table: pd.DataFrame, path: str | Path, confidence: float = 0.95) -> None:
    """Horizontal bars of ``mcd_db`` per ``system`` with CI whiskers (``mcd_db_ci_low``/``_high``)."""
    table = table.sort_values("mcd_db", ascending=False)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(table)))
    err = np.vstack([table["mcd_db"] - table["mcd_db_ci_low"], table["mcd_db_ci_high"] - table["mcd_db"]])
    colors = ["#999999" if k == "baseline" else "#3070b0" for k in table["kind"]]
    ax.barh(table["system"], table["mcd_db"], xerr=err, color=colors, capsize=4)
    ax.set_xlabel(f"MCD (dB), mean with {confidence:.0%} bootstrap CI; lower is better")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def plot_loss_curves(curves: Mapping[str, pd.DataFrame], keys: Sequence[str], path: str | Path) -> None:
    """One panel per loss name in ``keys``, one line per experiment (``step`` on x)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
    for ax, key in zip(np.atleast_1d(axes), keys, strict=True):
        for name, df in curves.items():
            if key in df:
                ax.plot(df["step"], df[key], label=name)
        ax.set_title(key)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    _save(fig, path)


def plot_validation_curves(
    curves: Mapping[str, Mapping[int, pd.DataFrame]], path: str | Path, best: Mapping[str, Mapping[int, int]]
) -> None:
    """Validation MCD against the iteration: one colour per experiment, one line per seed (``curves``:
    experiment -> seed -> rows of ``step``, ``val/mcd_db``, ``val/mcd_db_mean_var``, ``val/mcd_db_source``),
    a dot at each run's best iteration (``best``), and the mean-var and unconverted-source levels as
    horizontal lines (the same validation items for every run)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    levels: dict[str, float] = {}
    for colour, (name, seeds) in enumerate(curves.items()):
        for k, (seed, df) in enumerate(seeds.items()):
            line = ax.plot(
                df["step"],
                df["val/mcd_db"],
                color=f"C{colour}",
                alpha=0.85,
                linestyle=("-", "--", ":", "-.")[k % 4],
                label=f"{name} (seed {seed})",
            )[0]
            step = best.get(name, {}).get(seed)
            if step is not None and step in set(df["step"]):
                value = float(df.loc[df["step"] == step, "val/mcd_db"].iloc[0])
                ax.plot([step], [value], "o", color=line.get_color(), markersize=4)
            levels.setdefault("mean-var", float(df["val/mcd_db_mean_var"].iloc[0]))
            levels.setdefault("source (unconverted)", float(df["val/mcd_db_source"].iloc[0]))
    for (label, value), style in zip(levels.items(), ("-", ":"), strict=False):
        ax.axhline(value, color="black", linestyle=style, linewidth=1.2, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation MCD (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)
