#!/usr/bin/env bash
# The CPU experiments behind docs/RESULTS.md, in the order they run.
# Scale: configs/synthetic/base.yaml as shipped (the README main job's: 64x64
# subject-framed scenes, 1,500 training / 200 validation, 5 epochs,
# quarter-width ResNet-18 from scratch). 7 to 17 minutes per six-task run
# with two one-thread processes side by side on 2 cores (AMD EPYC / Intel
# Xeon build machines; docs/RESULTS.md has the measured times). JOBS workers
# (default 2) each walk the suites in order; train.sweep claims every run
# with a lock, so each run is trained once, after its reference, and a worker
# that finds a suite's remaining runs claimed moves on to the next suite
# instead of waiting. After every suite a worker also adds parts to scaling's
# finished 5-task TSNs (train.add_task), so that result does not wait for the
# suites after scaling. Every suite is resumable: run the script again after
# any interruption and it continues where it stopped.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/sweeps/synthetic}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=1

SUITES=(  # file, then seeds
  "configs/sweeps/paper_main.yaml 0 1 2"            # main table; its single-task runs are every suite's reference
  "configs/sweeps/collapse_main.yaml 0 1 2"         # the collapse's fixes against paper_main's task INs / BNs
  "configs/sweeps/embedding_ablation.yaml 0 1 2"    # orthogonal / Gaussian codes, d = 50..250
  "configs/sweeps/scaling.yaml 0 1"                 # TSN and multi-decoder on 2..6 tasks
  "configs/sweeps/comparison.yaml 0 1 2"            # cross-stitch, NDDR-CNN, MTAN, PAD-Net, MTI-Net
  "configs/sweeps/comparison_weighting.yaml 0"      # torchjd balancing on TSN (about 4x a fixed-weighting run)
  "configs/sweeps/comparison_weighting.yaml 1 2"    # ... its seeds 1-2 for the paired claims, after every method's seed 0
)

add_tasks() {  # parts added to scaling's 5-task TSN vs trained from scratch, each seed once its base is finished
  local rc=0 s new resume
  for s in 0 1; do
    new="$OUT/add_task/tsn_k5+parts/seed$s"
    [ -f "$new/metrics.json" ] && continue
    [ -f "$OUT/scaling/tsn_k5/seed$s/metrics.json" ] || continue  # not trained yet (perhaps by the other worker)
    mkdir -p "$(dirname "$new")" && mkdir "$new.claim" 2>/dev/null || continue  # the other worker has it
    resume=() && [ -d "$new/checkpoints" ] && resume=(--resume)
    python -m train.add_task "$OUT/scaling/tsn_k5/seed$s" --task parts --out "$new" \
      --seed "$s" --reference "$OUT/paper_main/single_task/seed$s" "${resume[@]}" || rc=1
    rmdir "$new.claim"
  done
  return $rc
}

worker() {  # every suite in order; a failed run is reported and the next suite still runs
  local rc=0 line file
  for line in "${SUITES[@]}"; do
    read -r file seeds <<< "$line"
    # shellcheck disable=SC2086
    python -m train.sweep "$file" --out "$OUT/$(basename "$file" .yaml)" --seeds $seeds || rc=1
    add_tasks || rc=1
  done
  return $rc
}

rm -rf "$OUT"/add_task/*/*.claim  # claims of an earlier, interrupted invocation
rc=0 pids=()
for ((j = 0; j < JOBS; j++)); do worker & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
rm -rf "$OUT"/add_task/*/*.claim
add_tasks || rc=1  # anything left (a base that finished last)
KEEP=docs/results/main_scale
[ -f "$KEEP/trivial.json" ] ||  # every table's trivial-predictor row (the best constants on the val split)
  { python -m eval trivial configs/synthetic/tsn.yaml --json > "$KEEP/trivial.json.tmp" &&
    mv "$KEEP/trivial.json.tmp" "$KEEP/trivial.json"; } || rc=1
python -m eval records "$OUT" --out "$KEEP/runs" &&   # metrics, configs, logs: small, committed
  python -m eval tables "$OUT" --out "$KEEP" --trivial "$KEEP/trivial.json" &&
  python -m eval tables "$OUT" --out "$KEEP/no_edge" --trivial "$KEEP/trivial.json" --without edge > /dev/null &&
  python -m eval figures "$OUT" --out "$KEEP" || rc=1
exit $rc
