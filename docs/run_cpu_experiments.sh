#!/usr/bin/env bash
# The CPU-scale experiments behind docs/RESULTS.md, in the order they ran.
# Scale: 64x64 renders, 400 training / 100 validation scenes, 4 epochs,
# quarter-width ResNet-18 from scratch (configs/synthetic/base.yaml otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/sweeps/synthetic}
SCALE=(--set data.options.length.train=400 --set data.options.length.val=100 --set train.epochs=4 --set train.val_every=1)
python -m train.sweep configs/sweeps/paper_main.yaml --out "$OUT/paper_main" "${SCALE[@]}"
python -m train.sweep configs/sweeps/embedding_ablation.yaml --out "$OUT/embedding_ablation" --seeds 0 "${SCALE[@]}"
python -m train.sweep configs/sweeps/scaling.yaml --out "$OUT/scaling" --seeds 0 "${SCALE[@]}"
python -m train.add_task "$OUT/scaling/tsn_k5/seed0" --task parts --out "$OUT/add_task/tsn_k5+parts/seed0" \
    --reference "$OUT/paper_main/single_task/seed0"
python -m eval tables "$OUT" --out docs/results
python -m eval figures "$OUT" --out docs/results
