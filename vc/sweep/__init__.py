"""Sweeps: a grid of DVC experiments run locally (the DVC queue) or as SLURM jobs (submitit), with a shared
DVC cache, a shared MLflow store, persistent checkpoints and resumption after preemption. ``vc sweep``."""
