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
if ! python -c "import fastcore" 2>/dev/null; then   # the notebooks' tests and pid_ssl_train's --help use fastcore
  export PYTHONPATH="$PYTHONPATH:$(pwd)/scripts/shims" PID_SSL_FASTCORE_SHIM=1
  echo "fastcore is not installed: using the minimal stand-in in scripts/shims"
fi
exec python scripts/gpu_check.py "$@"
