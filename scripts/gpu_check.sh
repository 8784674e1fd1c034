#!/usr/bin/env bash
# Check pid_ssl on an NVIDIA GPU in one call; everything measured is written as JSON to --out (default: $OUT).
#   bash scripts/gpu_check.sh [--out DIR] [--fmnist-root DIR] [--stages env,notebooks,bench,pretrain] [--smoke --device cpu]
# Needs only torch, torchvision, timm, pandas, seaborn (no nbdev, papermill or nbformat: notebooks are read as JSON).
# Fashion-MNIST for the pretrain stage: carry the four IDX .gz files along (e.g. in data/fashion-mnist/) and pass
# --fmnist-root, or leave them where scripts/gpu_check.py looks ($PID_SSL_DATA/fashion-mnist, data/fashion-mnist,
# /usr/share/datasets/fashion-mnist). See `python scripts/gpu_check.py --help` for every option.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg PYTHONUNBUFFERED=1
if ! python -c "import fastcore" 2>/dev/null; then   # the notebooks' tests use fastcore.test; the GPU machine has no network
  if ls .whl/fastcore-*.whl >/dev/null 2>&1; then
    python -m pip install -q --no-index --no-deps .whl/fastcore-*.whl && echo "fastcore installed offline from $(ls .whl/fastcore-*.whl)"
  else
    echo "fastcore is not installed and no wheel was carried: run 'pip download \"fastcore>=1.12.3,<1.13\" --no-deps -d .whl' here and carry .whl" >&2
    exit 2
  fi
fi
exec python scripts/gpu_check.py "$@"
