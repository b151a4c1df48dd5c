#!/usr/bin/env bash
# The GPU check as run on a lent device machine (no network; python3 there has CUDA torch).
# sweepspec's other dependencies travel as cp312 wheels in .whl/ (see docs/benchmarks.md for how
# they were fetched). Writes gpu.md and the trials tables to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-out}"; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
fi
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import ray, optuna, pydantic, torch; print('ray', ray.__version__, 'optuna', optuna.__version__, 'torch', torch.__version__, torch.cuda.is_available())" || exit 1
timeout 300 python3 benchmarks/gpu_check.py --samples "${SAMPLES:-12}" ${EPOCHS:+--epochs "$EPOCHS"} 2>&1 | tee "$OUT/gpu_check.log"
rc=$?
[ -n "${SKIP_PYTEST:-}" ] || timeout 120 python3 -m pytest -p no:cacheprovider -q -m gpu tests/backends/ray_backend 2>&1 | tail -15 | tee "$OUT/pytest_gpu.log"
exit $rc
