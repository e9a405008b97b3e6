#!/usr/bin/env bash
# The GPU check (README "Benchmarks"), one script that fits in 8 minutes on one H100/H200: the CUDA tests, the
# paper preset's training step (fp32 and bf16), and a short paper-preset training scored on the validation
# sentences. Every figure goes into one folder.
#
#   benchmarks/gpu.sh [OUT]                 # on a CUDA machine with the project's environment (default OUT: gpu-check)
#   GPU_DRY_RUN=1 benchmarks/gpu.sh OUT     # the same steps on CPU at tiny sizes (tests/test_gpu_script.py)
#
# PYTHON picks the interpreter (default: .venv/bin/python, else python3). Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-gpu-check}" && cd "${1:-gpu-check}" && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PATH="$(dirname "$(command -v "$PYTHON")"):$PATH" PYTHONUNBUFFERED=1
if [ "${GPU_DRY_RUN:-0}" = 1 ]; then
  DEVICE=cpu STEP_ARGS=(--iters 2 --warmup 1) PARAMS=benchmarks/gpu-dry-run.yaml
else
  DEVICE=cuda STEP_ARGS=(--preset paper --iters 20 --warmup 5) PARAMS=benchmarks/gpu-params.yaml
fi
step() { echo "== $1 ($(date -u +%H:%M:%S))" | tee -a "$OUT/summary.txt"; }

step "machine"
{ nvidia-smi || echo "nvidia-smi: not found"; "$PYTHON" -c 'import torch; print("torch", torch.__version__,
  "cuda", torch.version.cuda, "available", torch.cuda.is_available())'; } > "$OUT/machine.txt" 2>&1
tail -n 1 "$OUT/machine.txt" | tee -a "$OUT/summary.txt"

step "CUDA tests"
"$PYTHON" -m pytest -q -p no:cacheprovider -k cuda tests > "$OUT/cuda-tests.txt" 2>&1 \
  || echo "CUDA tests FAILED (see cuda-tests.txt)" | tee -a "$OUT/summary.txt"
tail -n 1 "$OUT/cuda-tests.txt" | tee -a "$OUT/summary.txt"

for amp in none bf16; do
  step "training step, amp=$amp"
  "$PYTHON" -m benchmarks.train_step --device "$DEVICE" --amp "$amp" "${STEP_ARGS[@]}" \
    > "$OUT/train-step-$amp.txt" 2>&1
  grep -E "seconds per iteration|peak" "$OUT/train-step-$amp.txt" | tee -a "$OUT/summary.txt"
done

step "short training, validation MCD ($PARAMS)"
"$PYTHON" .ci/report.py --params "$PARAMS" --out "$OUT/short-training" > "$OUT/short-training.log" 2>&1
grep -E "^\| (stargan-vc2|mean-var|source|copy-synthesis) " "$OUT/short-training/report.md" | head -n 8 \
  | tee -a "$OUT/summary.txt"
step "done: $OUT/summary.txt"
