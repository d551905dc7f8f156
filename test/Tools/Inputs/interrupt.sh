#!/usr/bin/env bash
# Starts a long dsflow-run, sends it SIGNAL once it has logged a step, waits for
# it, then resumes for one more step. Usage: interrupt.sh SIGNAL PLAN DATA DIR
set -u
signal=$1 plan=$2 data=$3 dir=$4
dsflow-run "$plan" --data "$data" --steps 1000000 --log-interval 1 \
  --checkpoint-dir "$dir" --val-fraction 0 > "$dir.out" 2>&1 &
pid=$!
for _ in $(seq 200); do
  grep -q '^step ' "$dir.out" 2> /dev/null && break
  sleep 0.05
done
kill -"$signal" "$pid"
wait "$pid"
echo "exit code $?"
grep '^interrupted' "$dir.out"
echo "latest: $(cat "$dir/latest")"
last=$(sed -n 's/^interrupted after step \([0-9]*\).*/\1/p' "$dir.out")
dsflow-run "$plan" --data "$data" --steps $((last + 1)) --checkpoint-dir "$dir" \
  --val-fraction 0 --resume
