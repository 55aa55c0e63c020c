#!/usr/bin/env bash
# Wall time of `latentlab demo` from a cold start: a new process, a new run folder, nothing of the
# demo cached (the generated faces are made in the process). The OS page cache is left as it is
# (dropping it needs root and slows every other job on the machine). Goal: under 60 s on 2 cores.
#
#   benchmarks/demo_time.sh            # uses .venv/bin/latentlab, or LATENTLAB=/path/to/latentlab
#   RUNS=3 benchmarks/demo_time.sh     # several cold runs, one after another
set -euo pipefail
cd "$(dirname "$0")/.."
latentlab="${LATENTLAB:-.venv/bin/latentlab}"
[[ -x "$latentlab" ]] || latentlab="$(command -v latentlab)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "# latentlab demo, cold start ($latentlab)"
for i in $(seq 1 "${RUNS:-1}"); do
    echo "before run $i: $(uptime)"
    start=$(date +%s.%N)
    "$latentlab" demo --out "$tmp/demo-$i" --quiet > "$tmp/log-$i.txt"
    end=$(date +%s.%N)
    tail -n 5 "$tmp/log-$i.txt"
    python3 -c "print(f'run $i: latentlab demo took {$end - $start:.1f} s wall (goal: under 60 s)')"
done
echo "after: $(uptime)"
