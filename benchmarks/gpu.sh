#!/usr/bin/env bash
# The device run: every benchmark suite on a CUDA GPU, plus the CUDA test of the engine.
# Run from the repository root on a machine with a GPU and its own PyTorch. It expects:
#   .whl/     wheels of what that machine lacks (captum, grad-cam, ttach, torch-lucent, kornia 0.4.1, decorator)
#   .device/  torchvision's mobilenet_v2-b0353104.pth (no network there)
#   $OUT      where the JSON results and the log go
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
# torch-lucent imports IPython.display at import time only to show images in notebooks, which the
# benchmark never does; that machine has no IPython, so a two-line stand-in satisfies the import.
mkdir -p /tmp/site/IPython && printf 'from . import display\n' > /tmp/site/IPython/__init__.py
printf 'def display(*a, **k):\n    pass\n\n\nclass HTML(str):\n    pass\n' > /tmp/site/IPython/display.py
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
mkdir -p ~/.cache/torch/hub/checkpoints && cp .device/*.pth ~/.cache/torch/hub/checkpoints/
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
suites="--suite featuremaps --suite cold_start --suite training --suite attribution --suite featurevis --suite load"
python3 -m benchmarks.run --device cuda $suites --out "$OUT" > "$OUT/log.txt" 2>&1
grep -E '^[a-z_]+: |meets_target|"vis_core_vs|_over_|feature_maps_all|feature_maps_blocks|total_s|wall_seconds|Error' "$OUT/log.txt"
python3 -m pytest tests/test_engine.py -q -p no:cacheprovider -k "cuda or concurrent" 2>&1 | tail -3
