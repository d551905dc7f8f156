#!/usr/bin/env bash
# bench/cuda/pipeline_ranks.sh DSFLOW_RUN PLAN DATA OUT [dsflow-run options]
# Trains PLAN (two ranks: pipeline stages or EP) on DATA with its two ranks launched
# torchrun-style on this machine (the TCP world, no MPI needed; with
# --device cuda they share the GPUs round robin). Writes OUT.csv (the loss
# log) and OUT-rank{0,1}.txt, prints rank 0's last lines; fails when a rank
# does.
set -uo pipefail
run=${1:?usage: pipeline_ranks.sh DSFLOW_RUN PLAN DATA OUT [options]}
plan=${2:?} data=${3:?} out=${4:?}
shift 4
port=$((20000 + RANDOM % 20000))
pids=()
for rank in 0 1; do
  RANK=$rank WORLD_SIZE=2 LOCAL_RANK=$rank MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    timeout 300 "$run" "$plan" --data "$data" --val-fraction 0 --log-interval 10 \
    --loss-log "$out.csv" "$@" > "$out-rank$rank.txt" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
tail -n 4 "$out-rank0.txt"
[ $status = 0 ] || { echo "pipeline_ranks.sh: a rank failed:"; tail -n 3 "$out-rank1.txt"; }
exit $status
