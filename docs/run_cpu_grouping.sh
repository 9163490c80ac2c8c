#!/usr/bin/env bash
# The CPU-scale task-grouping study behind docs/RESULTS.md (issue: which tasks
# should be learned together): subsets (expensive), TAG and TSN latents (cheap).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/grouping}
python -m train.subsets configs/synthetic/multi_decoder.yaml --set-from configs/sweeps/grouping.yaml \
    --set train.sampling=all --with-all --out "$OUT/subsets"
python -m train.sweep configs/sweeps/grouping.yaml --out "$OUT"
python -m eval grouping --subsets "$OUT/subsets" --tag "$OUT/tag/seed0" --tsn "$OUT/tsn/seed0" \
    --budgets 1 2 3 --out docs/grouping
# train the groups that the cheap signals chose but no subset network covered, then report again
python -m train.subsets configs/synthetic/multi_decoder.yaml --set-from configs/sweeps/grouping.yaml \
    --set train.sampling=all --max-size 0 --groups edge+semseg+normals+depth edge+semseg+parts+sal --out "$OUT/subsets"
python -m eval grouping --subsets "$OUT/subsets" --tag "$OUT/tag/seed0" --tsn "$OUT/tsn/seed0" \
    --budgets 1 2 3 --out docs/grouping
