#!/usr/bin/env bash
# Trains several reproduce_iwae.py rows side by side, one CPU core each,
# for MINUTES minutes, then waits for them (each stops at its first epoch
# end past the budget and resumes exactly when run again).
#
#   bash benchmarks/run_rows.sh 110 "--layers 1" "--layers 2"
#   bash benchmarks/run_rows.sh 50 "--layers 1" "--batch-size 100 --epochs 820 --schedule loglinear --warmup-epochs 10"
#
# A row with batch 20 spends its time in small ops, so one thread per op
# on a core of its own trains it nearly as fast as TensorFlow's default on
# all cores (measured: benchmarks/RESULTS.md, reproduce_iwae), and two
# rows at once make nearly twice the progress. Logs:
# benchmarks/_out/rows/<core>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -lt 2 ]; then
  echo "usage: bash benchmarks/run_rows.sh MINUTES \"ROW ARGS\" [\"ROW ARGS\" ...]" >&2
  exit 2
fi
minutes="$1"; shift
cores=$(nproc)
if [ "$#" -gt "$cores" ]; then
  echo "run_rows.sh: $# rows for $cores cores; give at most $cores" >&2
  exit 2
fi
PY="${PYTHON:-.venv/bin/python}"
mkdir -p benchmarks/_out/rows
pids=()
core=0
for row in "$@"; do
  log="benchmarks/_out/rows/${core}.log"
  # shellcheck disable=SC2086
  TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \
    taskset -c "$core" "$PY" benchmarks/reproduce_iwae.py $row \
    --max-minutes "$minutes" > "$log" 2>&1 &
  pids+=("$!")
  echo "core $core: reproduce_iwae.py $row (log $log, pid $!)"
  core=$((core + 1))
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=$?
done
"$PY" benchmarks/reproduce_iwae.py --card > /dev/null
echo "rows stopped (status $status); the card is in benchmarks/RESULTS.md"
exit "$status"
