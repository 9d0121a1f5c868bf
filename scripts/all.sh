#!/usr/bin/env bash
# Runs every experiment, cheapest first, then the report. Called by `make all` (QUICK=1: the quick configs).
# Finished runs are skipped by each experiment, so an interrupted `make all` resumes where it stopped.
# The planned times are the registry's wall times measured on a 2-core machine (make all: ~2 h; make all QUICK=1:
# 9 min 35 s); the ETA rescales them by how fast this machine has been so far.
set -u
quick=${QUICK:-0}

fmt_min() { # minutes (float) -> "1 h 05 min" / "7 min"
  awk -v m="$1" 'BEGIN { m = int(m + 0.5); if (m >= 60) printf "%d h %02d min", m / 60, m % 60; else printf "%d min", m }'
}

# The plan comes from the registry (src/experiments/mod.rs): name, config and planned seconds per line.
bin=${BIN:-target/release}
plan=$("$bin/report" --plan $([ "$quick" = 1 ] && echo --quick)) || { echo "error: $bin/report --plan failed" >&2; exit 1; }
targets=() configs=() minutes=()
while IFS=$'\t' read -r target config seconds; do
  targets+=("$target") configs+=("$config") minutes+=("$(awk -v s="$seconds" 'BEGIN { print s / 60 }')")
done <<<"$plan"

# The quick runs go to their own tree so that they never mix with full runs.
args=() results=results
if [ "$quick" = 1 ]; then args=(--set output.dir=results-quick) results=results-quick; fi

n=${#targets[@]}
total=$(printf '%s\n' "${minutes[@]}" | awk '{ s += $1 } END { print s }')
echo "==> make all$([ "$quick" = 1 ] && echo ' QUICK=1'): $n experiments, about $(fmt_min "$total") on 2 cores (less where runs are already done)"
start=$(date +%s) planned_done=0 failed=()
for i in $(seq 0 $((n - 1))); do
  elapsed=$(( ($(date +%s) - start) ))
  left=$(awk -v t="$total" -v d="$planned_done" -v e="$elapsed" \
    'BEGIN { r = t - d; if (d > 0 && e > 30) r *= (e / 60) / d; print r }')
  echo
  echo "==> [$((i + 1))/$n] make ${targets[$i]} CONFIG=${configs[$i]}  (planned $(fmt_min "${minutes[$i]}"); elapsed $(fmt_min $((elapsed / 60))), about $(fmt_min "$left") left)"
  if ! make --no-print-directory "${targets[$i]}" CONFIG="${configs[$i]}" ARGS="${args[*]}"; then
    failed+=("${targets[$i]}")
    echo "==> ${targets[$i]} failed; continuing with the next experiment (rerun make all to retry: finished runs are kept)" >&2
  fi
  planned_done=$(awk -v a="$planned_done" -v b="${minutes[$i]}" 'BEGIN { print a + b }')
done

echo
make --no-print-directory report RESULTS=$results || failed+=(report)
echo "==> done in $(fmt_min $((($(date +%s) - start) / 60))); open $(pwd)/$results/index.html"
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: these failed: ${failed[*]} (their messages are above)" >&2
  exit 1
fi
