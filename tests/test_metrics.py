"""Known-answer tests for the array-level metrics in vc.evaluation.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vc.evaluation.metrics import (
    MCD_CONST,
    dtw_path,
    f0_metrics,
    mcd,
    mcd_frames,
    modulation_spectrum,
    msd,
)


def reference_dtw(x: np.ndarray, y: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
    """Plain-python DTW with steps (1,1), (1,0), (0,1), unit weights and Euclidean frame distance."""
    tx, ty = len(x), len(y)
    cost = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1))
    acc = np.full((tx, ty), np.inf)
    for i in range(tx):
        for j in range(ty):
            if i == 0 and j == 0:
                acc[i, j] = cost[0, 0]
                continue
            prev = min(
                acc[i - 1, j - 1] if i > 0 and j > 0 else np.inf,
                acc[i - 1, j] if i > 0 else np.inf,
                acc[i, j - 1] if j > 0 else np.inf,
            )
            acc[i, j] = cost[i, j] + prev
    path = [(tx - 1, ty - 1)]
    i, j = tx - 1, ty - 1
    while (i, j) != (0, 0):
        candidates = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        i, j = min((c for c in candidates if c[0] >= 0 and c[1] >= 0), key=lambda c: acc[c])
        path.append((i, j))
    return float(acc[-1, -1]), path[::-1]


def path_cost(x: np.ndarray, y: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> float:
    return float(np.linalg.norm(x[ix] - y[iy], axis=1).sum())


def smooth_mcep(rng: np.random.Generator, frames: int, dims: int) -> np.ndarray:
    """Slowly varying random trajectories, shape (frames, dims), like mel-cepstra of speech."""
    t = np.arange(frames)[:, None]
    freqs = rng.uniform(0.005, 0.05, size=(1, dims))
    phases = rng.uniform(0, 2 * np.pi, size=(1, dims))
    return np.sin(2 * np.pi * freqs * t + phases) + 0.1 * rng.standard_normal((1, dims))


# --- DTW ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tx", "ty", "dims"), [(20, 20, 3), (25, 40, 5), (37, 18, 34), (1, 7, 2), (6, 1, 2)])
def test_dtw_matches_reference(tx: int, ty: int, dims: int) -> None:
    rng = np.random.default_rng(tx * 100 + ty)
    x = rng.standard_normal((tx, dims))
    y = rng.standard_normal((ty, dims))
    ix, iy = dtw_path(x, y)
    ref_cost, ref_path = reference_dtw(x, y)
    assert path_cost(x, y, ix, iy) == pytest.approx(ref_cost, rel=1e-12)
    # Continuous random inputs: the optimum is unique, so the paths themselves agree.
    assert list(zip(ix.tolist(), iy.tolist(), strict=True)) == ref_path


def test_dtw_with_ties_matches_reference_cost() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(30, 1)).astype(float)
    y = rng.integers(0, 2, size=(24, 1)).astype(float)
    ix, iy = dtw_path(x, y)
    ref_cost, _ = reference_dtw(x, y)
    assert path_cost(x, y, ix, iy) == pytest.approx(ref_cost)


def test_dtw_path_shape() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((70, 4))
    ix, iy = dtw_path(x, y)
    assert ix.shape == iy.shape
    assert (ix[0], iy[0]) == (0, 0)
    assert (ix[-1], iy[-1]) == (49, 69)
    steps = set(zip(np.diff(ix).tolist(), np.diff(iy).tolist(), strict=True))
    assert steps <= {(1, 1), (1, 0), (0, 1)}


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "dims differ"),
        (np.zeros((0, 3)), np.zeros((5, 3)), "no frames"),
        (np.zeros(5), np.zeros((5, 1)), "2-D"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), "NaN"),
    ],
)
def test_dtw_rejects_bad_input(x: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dtw_path(x, y)


# --- MCD ----------------------------------------------------------------------------------------------


def test_mcd_const() -> None:
    assert pytest.approx(10 / math.log(10) * math.sqrt(2)) == MCD_CONST


def test_identical_sequences_give_zero_mcd() -> None:
    c = smooth_mcep(np.random.default_rng(0), 80, 25)
    result = mcd(c, c.copy())
    assert result.mcd_db == 0.0
    assert result.frames == 80
    np.testing.assert_array_equal(result.path[0], np.arange(80))
    np.testing.assert_array_equal(result.path[1], np.arange(80))


@pytest.mark.parametrize("offset", [0.1, -0.37, 1.5])
def test_constant_offset_in_one_coefficient(offset: float) -> None:
    c = smooth_mcep(np.random.default_rng(1), 60, 25)
    shifted = c.copy()
    shifted[:, 3] += offset
    np.testing.assert_allclose(mcd_frames(c[:, 1:], shifted[:, 1:]), MCD_CONST * abs(offset), rtol=1e-12)
    result = mcd(c, shifted)
    assert result.mcd_db == pytest.approx(MCD_CONST * abs(offset), rel=1e-12)
    assert result.frames == 60


def test_c0_alone_does_not_change_mcd() -> None:
    rng = np.random.default_rng(2)
    c = smooth_mcep(rng, 60, 25)
    louder = c.copy()
    louder[:, 0] += rng.normal(3.0, 1.0, size=60)
    assert mcd(c, louder).mcd_db == 0.0
    assert mcd(c, louder, include_c0=True).mcd_db > 1.0


def test_time_stretch_is_absorbed_by_dtw() -> None:
    c = smooth_mcep(np.random.default_rng(4), 100, 25)
    stretched = np.repeat(c, 2, axis=0)
    result = mcd(c, stretched)
    assert result.mcd_db < 0.1
    assert result.frames == 200
    # Without alignment a copy delayed by a few frames is far off.
    delayed = mcd_frames(c[5:, 1:], c[:-5, 1:]).mean()
    assert delayed > 1.0
    assert mcd(c[5:], c[:-5]).mcd_db < delayed


def test_masks_exclude_frames_and_path_indexes_original_arrays() -> None:
    rng = np.random.default_rng(5)
    conv = smooth_mcep(rng, 40, 10)
    tgt = conv.copy()
    # Garbage "silent" frames that would cost a lot if they were aligned.
    conv = np.insert(conv, [0, 0, 20], 50.0, axis=0)
    tgt = np.insert(tgt, [40, 40], -50.0, axis=0)
    conv_mask = np.abs(conv[:, 1]) < 10
    tgt_mask = np.abs(tgt[:, 1]) < 10
    result = mcd(conv, tgt, converted_mask=conv_mask, target_mask=tgt_mask)
    assert result.mcd_db == 0.0
    ix, iy = result.path
    assert conv_mask[ix].all()
    assert tgt_mask[iy].all()
    np.testing.assert_array_equal(conv[ix], tgt[iy])
    assert ix[0] == 2 and iy[0] == 0
    assert result.frames == 40
    assert mcd(conv, tgt).mcd_db > 10.0


def test_mcd_errors() -> None:
    c = np.zeros((10, 5))
    with pytest.raises(ValueError, match="dims differ"):
        mcd(c, np.zeros((10, 6)))
    with pytest.raises(ValueError, match="converted has no frames left"):
        mcd(c, c, converted_mask=np.zeros(10, dtype=bool))
    with pytest.raises(ValueError, match="target has no frames left"):
        mcd(c, c, target_mask=np.zeros(10, dtype=bool))
    with pytest.raises(ValueError, match="target_mask must be a boolean"):
        mcd(c, c, target_mask=np.ones(9, dtype=bool))


# --- F0 -----------------------------------------------------------------------------------------------


def f0_contour(frames: int) -> np.ndarray:
    t = np.arange(frames)
    f0 = 150.0 + 30.0 * np.sin(2 * np.pi * t / 40)
    f0[(t % 25) < 5] = 0.0  # unvoiced stretches
    return f0


def identity_path(frames: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(frames), np.arange(frames)


def test_identical_f0() -> None:
    f0 = f0_contour(100)
    result = f0_metrics(f0, f0.copy(), identity_path(100))
    assert result.log_f0_rmse == 0.0
    assert result.f0_corr == pytest.approx(1.0)
    assert result.vuv_error == 0.0
    assert result.voiced_frames == int((f0 > 0).sum())
    assert result.frames == 100


def test_octave_up_f0() -> None:
    f0 = f0_contour(100)
    result = f0_metrics(2.0 * f0, f0, identity_path(100))
    assert result.log_f0_rmse == pytest.approx(math.log(2.0))
    assert result.log_f0_rmse_cents == pytest.approx(1200.0)
    assert result.f0_corr == pytest.approx(1.0)


def test_unvoiced_frames_are_excluded() -> None:
    f0 = f0_contour(100)
    other = f0.copy()
    other[:10] = 0.0  # target unvoiced where the converted speech is voiced: only vuv counts it
    result = f0_metrics(f0, other, identity_path(100))
    assert result.log_f0_rmse == 0.0
    assert result.voiced_frames == int((other > 0).sum())
    assert result.vuv_error == pytest.approx(np.mean((f0 > 0) != (other > 0)))
    assert result.vuv_error > 0


def test_f0_follows_the_path() -> None:
    f0 = f0_contour(50)
    stretched = np.repeat(f0, 2)
    path = (np.repeat(np.arange(50), 2), np.arange(100))
    result = f0_metrics(f0, stretched, path)
    assert result.log_f0_rmse == 0.0
    assert result.frames == 100


def test_too_few_voiced_frames_give_nan() -> None:
    f0 = np.zeros(20)
    f0[3] = 120.0
    result = f0_metrics(f0, f0, identity_path(20))
    assert math.isnan(result.log_f0_rmse)
    assert math.isnan(result.log_f0_rmse_cents)
    assert math.isnan(result.f0_corr)
    assert result.voiced_frames == 1
    assert result.vuv_error == 0.0


def test_f0_path_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        f0_metrics(np.ones(5), np.ones(5), (np.arange(6), np.arange(6)))


# --- MSD ----------------------------------------------------------------------------------------------


def test_modulation_spectrum_shape_and_padding() -> None:
    c = smooth_mcep(np.random.default_rng(6), 200, 24)
    assert modulation_spectrum(c, 64).shape == (33, 24)
    assert modulation_spectrum(c[:10], 64).shape == (33, 24)
    assert np.isfinite(modulation_spectrum(np.ones((50, 3)))).all()


def test_modulation_spectrum_peak_at_oscillation_frequency() -> None:
    t = np.arange(256)[:, None]
    c = np.cos(2 * np.pi * 8 / 64 * t)  # 8 cycles per 64-frame segment
    assert int(np.argmax(modulation_spectrum(c, 64)[:, 0])) == 8


def test_msd_self_is_zero_and_grows_with_high_frequency_noise() -> None:
    c = smooth_mcep(np.random.default_rng(7), 300, 24)
    assert msd(c, c.copy()) == 0.0
    wiggle = np.cos(np.pi * 0.8 * np.arange(300))[:, None]
    distances = [msd(c + amplitude * wiggle, c) for amplitude in (0.01, 0.1, 1.0)]
    assert 0.0 < distances[0] < distances[1] < distances[2]


def test_msd_dims_must_match() -> None:
    with pytest.raises(ValueError, match="dims differ"):
        msd(np.zeros((100, 3)), np.zeros((100, 4)))
