#!/usr/bin/env bash
# The BSDS500 runs behind docs/RESULTS.md ("Real photographs: BSDS500"): TSN and the single-task
# network, seeds in the order given (default 0 1 2), one process with 2 threads (configs/bsds/cpu.yaml:
# about half an hour per run on a 2-core CPU). Resumable: run it again after any interruption.
#   BSDS=/path/to/BSR bash docs/run_bsds.sh [SEED ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BSDS=${BSDS:?set BSDS to the BSDS500 folder: the archive BSR/ or any folder down to BSR/BSDS500/data}
OUT=${OUT:-runs/sweeps/bsds/bsds}
seeds=("${@:-0 1 2}")
# shellcheck disable=SC2068
for s in ${seeds[@]}; do
    for run in tsn single_task; do
        python -m train.sweep configs/sweeps/bsds.yaml --dataset bsds --out "$OUT" --only "$run" --seeds "$s" \
            --set "data.root=$BSDS"
    done
done
