"""Time one training iteration (one D update + one G update) of the real Trainer, and its peak memory.

    python -m benchmarks.train_step                      # the params.yaml default model, 1 thread
    python -m benchmarks.train_step --preset paper --threads 1
    python -m benchmarks.train_step --preset paper --device cuda --amp bf16
    python -m benchmarks.train_step --profile 5        # torch.profiler: where one iteration's time goes
    python -m benchmarks.train_step --roofline         # arithmetic per iteration against the matmul peak
    python -m benchmarks.train_step --dim 36 --set '{"model": {"generator": {"channels": 64}}}'  # any variant

Batch 8 (``train.batch_size``), 35 x 128 features (``--dim``, ``train.crop_frames``), identity term on.
Prints the median and min seconds per iteration over ``--iters`` timed iterations after ``--warmup``,
CPU-seconds per iteration (process CPU time; equals wall time single-threaded), iterations per second and
peak memory (RSS; and CUDA peak allocation on a GPU). ``--profile N`` then profiles N more iterations with
:mod:`torch.profiler` and prints the operators (grouped by input shape) that take the most self time.
``--roofline`` counts one iteration's arithmetic (:class:`torch.utils.flop_counter.FlopCounterMode`:
convolutions and matrix products, forward and backward; element-wise work is not counted) and sets the
achieved rate against a large matrix product in the training dtype on the same device and threads: the
fastest this machine multiplies, so ``seconds at peak`` is a floor no kernel tuning can go below.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from vc.config import ExperimentConfig, load_params
from vc.configlib import build, deep_merge, to_dict
from vc.parallel import cpus_per_job
from vc.stargan.data import FeatureBank
from vc.stargan.trainer import Trainer

log = logging.getLogger("benchmarks.train_step")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", default="stargan-vc2")
    parser.add_argument(
        "--preset", default=None, help="a name under presets: (default: params.yaml's preset)"
    )
    parser.add_argument(
        "--set",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='an experiment override merged over the preset\'s, e.g. \'{"model": {"generator": ...}}\'',
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: CPUs / VC_PARALLEL_JOBS")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", default=None, choices=["none", "bf16"])
    parser.add_argument("--dim", type=int, default=35)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, help="profile this many more iterations")
    parser.add_argument("--rows", type=int, default=25, help="operators to list with --profile")
    parser.add_argument(
        "--roofline", action="store_true", help="count FLOPs per iteration, compare with the matmul peak"
    )
    return parser.parse_args(argv)


def build_experiment(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment of ``--params``/``--preset`` (``--set`` merged over it) with a training section that
    never ends or checkpoints."""
    raw = yaml.safe_load(Path(args.params).read_text())
    if args.preset is not None:
        raw["preset"] = args.preset
    exp = load_params(raw).experiment(args.experiment)
    train = {
        "iterations": 10**9,
        "checkpoint_every": 10**9,
        "device": args.device,
        "num_threads": args.threads,
        "optimizer": {"decay_start": 0},
    }
    if args.amp:
        train["amp"] = args.amp
    merged = deep_merge(to_dict(exp), args.set or {})
    return build(ExperimentConfig, deep_merge(merged, {"train": train}))


def build_trainer(exp: ExperimentConfig, dim: int) -> Trainer:
    """The real Trainer on random features: 4 speakers x 4 utterances of 4 crops each."""
    rng = np.random.default_rng(0)
    crop = exp.train.crop_frames
    feats = {f"s{i}": [rng.standard_normal((crop * 4, dim)) for _ in range(4)] for i in range(4)}
    return Trainer(exp, FeatureBank(feats, list(feats), crop), Path("/nonexistent"), progress=False)


def time_iterations(trainer: Trainer, iters: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds of each of ``iters`` iterations after ``warmup`` untimed ones."""
    cuda = trainer.device.type == "cuda"
    times, cpu = [], []
    for i in range(warmup + iters):
        if cuda:
            torch.cuda.synchronize()
        w0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
    return times, cpu


def log_timing(trainer: Trainer, args: argparse.Namespace, times: list[float], cpu: list[float]) -> None:
    exp = trainer.exp
    g = exp.model.generator
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    params_m = sum(p.numel() for m in trainer.state.modules().values() for p in m.parameters()) / 1e6
    log.info(
        "model: generator channels=%d res_blocks=%d (%s), discriminator channels=%d; %.1fM parameters",
        g.channels,
        g.res_blocks,
        g.topology,
        exp.model.discriminator.channels,
        params_m,
    )
    log.info(
        "input: batch %d x %d x %d frames; device %s; torch threads %d; amp %s",
        exp.train.batch_size,
        args.dim,
        exp.train.crop_frames,
        args.device,
        torch.get_num_threads(),
        exp.train.amp,
    )
    log.info(
        "seconds per iteration: median %.3f, min %.3f (%d timed, %d warm-up)",
        np.median(times),
        min(times),
        args.iters,
        args.warmup,
    )
    log.info("CPU-seconds per iteration: median %.3f", np.median(cpu))
    log.info("iterations per second: %.2f", 1 / np.median(times))
    log.info("peak RSS: %.2f GB", rss_gb)
    if args.device == "cuda":
        log.info("peak CUDA memory: %.2f GB", torch.cuda.max_memory_allocated() / 2**30)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    exp = build_experiment(args)
    torch.set_num_threads(args.threads or cpus_per_job())  # 0: as train.num_threads: 0 (VC_PARALLEL_JOBS)
    trainer = build_trainer(exp, args.dim)
    times, cpu = time_iterations(trainer, args.iters, args.warmup)
    log_timing(trainer, args, times, cpu)
    if args.roofline:
        dtype = torch.bfloat16 if exp.train.amp == "bf16" else torch.float32
        roofline(trainer, float(np.median(times)), dtype)
    if args.profile:
        profile_steps(trainer, args.profile, args.rows, cuda=args.device == "cuda")


def roofline(trainer: Trainer, seconds: float, dtype: torch.dtype, size: int = 2048) -> None:
    """Log one iteration's FLOPs, the rate ``seconds`` per iteration implies and the ``size``-square
    matmul rate in ``dtype`` on the trainer's device (the same torch threads)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    flops = counter.get_total_flops()
    device = trainer.device
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    rates = []
    for _ in range(6):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(2 * size**3 / (time.perf_counter() - t0))
    peak = max(rates[1:])  # the first call pays for setup
    if device.type == "cpu":
        # oneDNN multiplies bf16 on AMX tiles where the processor has them, several times faster than AVX-512
        features = {"AVX-512 BF16": "_is_avx512_bf16_supported", "AMX tiles": "_is_amx_tile_supported"}
        log.info(
            "CPU: %s",
            ", ".join(
                f"{name} {'yes' if getattr(torch.cpu, fn, lambda: False)() else 'no'}"
                for name, fn in features.items()
            ),
        )
    achieved = flops / seconds
    log.info(
        "arithmetic: %.4f TFLOP per iteration (convolutions and matmuls, forward and backward)", flops / 1e12
    )
    log.info(
        "achieved %.0f GFLOP/s; %s %dx%d matmul here: %.0f GFLOP/s; the iteration runs at %.0f%% of it "
        "(seconds per iteration at that rate: %.3f)",
        achieved / 1e9,
        str(dtype).removeprefix("torch."),
        size,
        size,
        peak / 1e9,
        100 * achieved / peak,
        flops / peak,
    )


def profile_steps(trainer: Trainer, iterations: int, rows: int, *, cuda: bool) -> None:
    """Log the operators with the most self time over ``iterations`` iterations, per input shape."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(iterations):
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize()
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_device_time_total if cuda else e.self_cpu_time_total for e in events)
    log.info(
        "top operators by self %s time (ms per iteration, share, calls per iteration, input shapes):",
        "CUDA" if cuda else "CPU",
    )
    ranked = sorted(events, key=lambda e: -(e.self_device_time_total if cuda else e.self_cpu_time_total))
    for e in ranked[:rows]:
        t = e.self_device_time_total if cuda else e.self_cpu_time_total
        log.info(
            "%8.2f %5.1f%% %4d  %-32s %s",
            t / 1e3 / iterations,
            100 * t / total,
            e.count // iterations,
            e.key,
            str(e.input_shapes)[:100],
        )


if __name__ == "__main__":
    main()
