#!/usr/bin/env bash
# Issue 15's GPU checks on a machine with numpy, scipy, torch and pytest and no package
# registries (nothing else travels): writes its logs and gpu_scale.json to $OUT.
# 1. the torch backend's equality tests with their CUDA parameters (the blocked engine's device
#    path, the incremental engine's products, Frank-Wolfe, adpo select's device routes, the DPO
#    MLE), selected by -k; SKIP_SCALE=1 stops after them;
# 2. bench.gpu_scale: the picks check, N = 1e6 x 4096 timing, the same rows selected by
#    `adpo design` from a pool folder, numpy on 2 host cores vs the GPU on one instance, and the
#    incremental engine (record_kappa and m candidates) on numpy vs the GPU; and the pool selected
#    again with only half of its rows fitting in the free device memory (the rest streamed).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_design_torch.py \
    tests/test_design_torch_incremental.py tests/test_design_relaxed_torch.py \
    tests/test_select_backend.py tests/test_dpo_torch.py \
    -k "cuda or gpu or compaction or pool or device_rows or blocks or streamed" 2>&1 | tee "$OUT/pytest_cuda.log" | tail -12
tests_rc=${PIPESTATUS[0]}
[ "${SKIP_SCALE:-0}" = 1 ] && exit "$tests_rc"
taskset -c 0,1 env OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 timeout "${GPU_SCALE_TIMEOUT:-420}" \
    python3 -m bench.gpu_scale --compare 131072 4096 4000 --incremental 65536 256 4096 --pool \
    --pool-partial 0.5 --pool-partial-n 500 \
    --out "$OUT/gpu_scale.json" 2>&1 | tee "$OUT/gpu_scale.log"
scale_rc=${PIPESTATUS[0]}
# non-zero when a CUDA test failed or a picks check of the benchmark did
exit $(( tests_rc != 0 ? tests_rc : scale_rc ))
