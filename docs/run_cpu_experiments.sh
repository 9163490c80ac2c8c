#!/usr/bin/env bash
# The CPU experiments behind docs/RESULTS.md, in the order they run.
# Scale: configs/synthetic/base.yaml as shipped (the README main job's: 64x64
# subject-framed scenes, 1,500 training / 200 validation, 5 epochs,
# quarter-width ResNet-18 from scratch). About 10-15 minutes per run and seed
# on one core; JOBS processes side by side (default 2), one thread each, share
# each suite (train.sweep claims every run with a lock, so each run is trained
# once, after its reference). Every suite is resumable: run the script again
# after any interruption and it continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/sweeps/synthetic}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=1

# suite FILE SEED... : JOBS processes share the suite's runs for these seeds
suite() {
  local file=$1; shift
  local name pids=()
  name=$(basename "$file" .yaml)
  for ((j = 0; j < JOBS; j++)); do
    python -m train.sweep "$file" --out "$OUT/$name" --seeds "$@" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

suite configs/sweeps/paper_main.yaml 0 1 2             # main table; its single-task runs are every suite's reference
suite configs/sweeps/collapse_main.yaml 0 1 2          # the collapse's fixes against paper_main's task INs / BNs
suite configs/sweeps/embedding_ablation.yaml 0 1 2     # orthogonal / Gaussian codes, d = 50..250
suite configs/sweeps/scaling.yaml 0 1                  # TSN and multi-decoder on 2..6 tasks
for s in 0 1; do                                       # parts added to the 5-task TSN vs trained from scratch
  [ -f "$OUT/add_task/tsn_k5+parts/seed$s/metrics.json" ] ||
    python -m train.add_task "$OUT/scaling/tsn_k5/seed$s" --task parts --out "$OUT/add_task/tsn_k5+parts/seed$s" \
      --reference "$OUT/paper_main/single_task/seed$s"
done
suite configs/sweeps/comparison.yaml 0 1 2             # cross-stitch, NDDR-CNN, MTAN, PAD-Net, MTI-Net
suite configs/sweeps/comparison_weighting.yaml 0       # torchjd balancing on TSN (several times a fixed-weighting run)
python -m eval records "$OUT" --out docs/results/main_scale/runs   # metrics, configs, logs: small, committed
python -m eval tables "$OUT" --out docs/results/main_scale
python -m eval figures "$OUT" --out docs/results/main_scale
