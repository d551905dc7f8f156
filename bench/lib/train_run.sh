# Sourced by the FP8 training benchmarks. train_run NAME SEED INIT_STD [FLAGS..]
# compiles $model (sequence 64, micro-batch 8, $lr, $steps steps, warm-up 100)
# and trains it on Tiny Shakespeare into $out/NAME.{plan,csv,log}, one thread.
# Resumable: the run checkpoints every 100 steps and continues from its latest
# checkpoint (bitwise) when called again; a finished run ($out/NAME.done) is
# kept, with only its last checkpoint (a 2000-step run's twenty would take
# 3 GB). Needs: bin, model, steps, lr, out.
train_run() {
  local name=$1 seed=$2 init=$3
  shift 3
  [ -e "$out/$name.done" ] && return 0
  "$bin/dsflow-compile" "models/$model.pbtxt" --emit=plan --seq-len=64 --micro-batch=8 \
    --lr="$lr" --warmup-steps=100 --total-steps="$steps" --seed="$seed" "$@" \
    -o "$out/$name.plan"
  local resume=""
  [ -d "$out/$name-checkpoints" ] && resume="--resume"
  OPENBLAS_NUM_THREADS=1 DSFLOW_NUM_THREADS=1 \
  "$bin/dsflow-run" "$out/$name.plan" --data models/tinyshakespeare.txt \
    --steps "$steps" --log-interval 250 --val-fraction 0 --loss-log "$out/$name.csv" \
    --checkpoint-dir "$out/$name-checkpoints" --checkpoint-interval 100 $resume \
    --init-std "$init" >> "$out/$name.log" 2>&1 || return 1
  touch "$out/$name.done" # only a run that reached its last step
  local last
  last=$(cat "$out/$name-checkpoints/latest") && [ -n "$last" ] || return 0
  find "$out/$name-checkpoints" -mindepth 1 -maxdepth 1 -name 'step-*' \
    ! -name "$last" -exec rm -rf {} +
}
