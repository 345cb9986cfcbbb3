#!/usr/bin/env bash
# One-shot detector v2 training on a lent GPU machine (see training/gpu_train.py).
#
#   training/gpu_job.sh BUNDLE OUT [options of python -m training.gpu_train]
#
# BUNDLE is what `python -m training.gpu_bundle BUNDLE` wrote (dataset, wheels, optional
# start weights), carried beside the working tree; OUT receives the fp16 weights, the ONNX
# export and results.csv. Defaults: 7.5 minutes of training, so that install, caching and
# export still fit in one 10-minute call.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BUNDLE OUT [training options]" >&2
  exit 2
fi
bundle=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
cd "$(dirname "$0")/.."

if compgen -G "$bundle/wheels/*.whl" > /dev/null; then
  site=${TMPDIR:-/tmp}/firewatch-site
  "${PYTHON:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$bundle"/wheels/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 YOLO_CONFIG_DIR="$out/.ultralytics"

start=()
if [ -f "$bundle/weights/start.pt" ]; then
  start+=(--weights "$bundle/weights/start.pt")
fi
if [ -d "$bundle/data/fire-extra" ]; then
  start+=(--fire-only "$bundle/data/fire-extra")
fi
"${PYTHON:-python3}" -m training.gpu_train --data "$bundle/data/fire" --out "$out" --hours 0.125 "${start[@]}" "$@" \
  2>&1 | tee "$out/train.log"
