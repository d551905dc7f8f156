#!/usr/bin/env bash
# bench/cuda/peer_benchmark.sh DIR OUT
# bench/cuda/peer_benchmark.sh --prepare DIR [BUILD]
# Issue 7's benchmark: a training step of a mid-size model on one GPU, dsflow
# against PyTorch with torch.compile running the same model (goal: dsflow
# >= 1.3x the tokens/s), with MFU.
#
# --prepare (where dsflow is built; bench/cuda/prepare_device_run.sh --tools
# calls it) writes DIR/peer: the model's ModelSpec (dsflow-compile
# --emit=spec) and its FP32 --cuda plan, tiny-v3's spec for the peer's check,
# and bench.env with the sizes. Model and sizes: bench/models/medium-v3.pbtxt,
# sequence 512, micro-batch 16, unless PEER_MODEL, PEER_SEQ, PEER_MB say
# otherwise; PEER_CUDA=0 compiles the plan without --cuda (a CPU run).
#
# DIR OUT (on the GPU machine, with PyTorch 2.x; run_on_device.sh calls it when
# DIR has peer/): checks the peer against the reference model
# (torch_peer.py --check: float64 on the CPU, then FP32 and BF16 on the GPU,
# eager and compiled), trains PEER_WARMUP + PEER_STEPS steps (default 5 + 20)
# with dsflow-run --device cuda on the FP32 plan, in FP32, with --tf32 and
# with --bf16-gemms, and on the same model compiled with --fp8 (DeepSeek-V3's
# recipe: the linear layers' and the FFNs' GEMMs on the FP8 tensor cores),
# then with bench/cuda/torch_peer.py --compile in FP32,
# TF32 and BF16 autocast, on Tiny Shakespeare (PEER_TF32=0: no TF32 runs),
# and writes OUT/peer-benchmark.md (bench/cuda/peer_report.py)
# with the logs and JSON beside it. PEER_DEVICE=cpu runs everything on the
# CPU (dsflow-run --device cpu, the peer eager) to try the plumbing without a
# GPU; DSFLOW_RUN overrides DIR/tools/dsflow-run, PYTHON python3,
# PEER_TIMEOUT the seconds a run may take (default 420: dsflow-run, stopped,
# still reports its rate), PEER_COMPILE_MODE torch.compile's mode.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ "${1:-}" = --prepare ]; then
  set -e
  dir=${2:?usage: peer_benchmark.sh --prepare DIR [BUILD]}
  bin=${3:-build}/bin
  model=${PEER_MODEL:-$root/bench/models/medium-v3.pbtxt}
  seq=${PEER_SEQ:-512}
  mb=${PEER_MB:-16}
  name=$(basename "$model" .pbtxt)
  cuda=--cuda
  [ "${PEER_CUDA:-1}" = 0 ] && cuda=
  mkdir -p "$dir/peer"
  "$bin/dsflow-compile" "$model" --emit=spec -o "$dir/peer/$name.spec"
  "$bin/dsflow-compile" "$root/models/tiny-v3.pbtxt" --emit=spec -o "$dir/peer/tiny-v3.spec"
  # dsflow-compile's training defaults, which torch_peer.py uses too.
  "$bin/dsflow-compile" "$model" --emit=plan $cuda --precision=fp32 --seq-len="$seq" \
    --micro-batch="$mb" -o "$dir/peer/$name.plan"
  "$bin/dsflow-compile" "$model" --emit=plan $cuda --precision=fp32 --fp8 --seq-len="$seq" \
    --micro-batch="$mb" -o "$dir/peer/$name-fp8.plan"
  printf 'model=%s\nseq_len=%s\nmicro_batch=%s\n' "$name" "$seq" "$mb" > "$dir/peer/bench.env"
  du -sh "$dir/peer"
  exit 0
fi

dir=${1:?usage: peer_benchmark.sh DIR OUT}
out=${2:?usage: peer_benchmark.sh DIR OUT}
peer=$dir/peer
[ -f "$peer/bench.env" ] || { echo "peer_benchmark.sh: $peer/bench.env missing (--prepare)" >&2; exit 1; }
model=$(sed -n 's/^model=//p' "$peer/bench.env")
seq=$(sed -n 's/^seq_len=//p' "$peer/bench.env")
mb=$(sed -n 's/^micro_batch=//p' "$peer/bench.env")
device=${PEER_DEVICE:-cuda}
steps=${PEER_STEPS:-20}
warmup=${PEER_WARMUP:-5}
limit=${PEER_TIMEOUT:-420}
python=${PYTHON:-python3}
dsflow_run=${DSFLOW_RUN:-$dir/tools/dsflow-run}
data=$root/models/tinyshakespeare.txt
peer_py=$root/bench/cuda/torch_peer.py
mkdir -p "$out"
status=0
commands=$out/peer-commands.txt
: > "$commands"
# Runs "$@" with its output in FILE, and records the command.
logged() { # FILE COMMAND...
  local file=$1
  shift
  printf '%q ' "$@" | sed 's/ $//' >> "$commands"
  echo " > ${file##*/}" >> "$commands"
  "$@" > "$file" 2>&1
}
compile=(--compile)
[ "$device" = cpu ] && compile=(--no-compile)
mode=()
[ -n "${PEER_COMPILE_MODE:-}" ] && mode=(--compile-mode "$PEER_COMPILE_MODE")
gpu=
command -v nvidia-smi > /dev/null && [ "$device" = cuda ] &&
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

echo "-- the peer against the reference model (torch_peer.py --check)"
logged "$out/peer-check.txt" "$python" "$peer_py" --check --spec "$peer/tiny-v3.spec" \
  --device "$device" "${compile[@]}" "${mode[@]}" || status=1
tail -n 1 "$out/peer-check.txt"

# TF32 (dsflow-run --tf32, torch_peer.py --tf32) on a GPU unless PEER_TF32=0.
precisions=(fp32)
[ "$device" = cuda ] && [ "${PEER_TF32:-1}" != 0 ] && precisions+=(tf32)
# dsflow's BF16 GEMMs (--bf16-gemms: operands in BF16, FP32 accumulation and
# outputs, as torch.autocast) against the peer's BF16 autocast.
dsflow_precisions=("${precisions[@]}")
[ "$device" = cuda ] && dsflow_precisions+=(bf16)
# The FP8 recipe's plan, where --prepare made one.
[ -f "$peer/$model-fp8.plan" ] && dsflow_precisions+=(fp8)
logs=()
for prec in "${dsflow_precisions[@]}"; do
  flags=()
  plan=$peer/$model.plan
  [ "$prec" = tf32 ] && flags=(--tf32)
  [ "$prec" = bf16 ] && flags=(--bf16-gemms)
  [ "$prec" = fp8 ] && plan=$peer/$model-fp8.plan
  echo "-- dsflow-run --device $device${flags[*]:+ ${flags[*]}}: ${plan##*/}, $mb x $seq tokens a step, $warmup + $steps steps"
  logged "$out/peer-dsflow-$prec.txt" timeout -s TERM "$limit" "$dsflow_run" \
    "$plan" --data "$data" --steps $((warmup + steps)) --log-interval 1 \
    --val-fraction 0 --device "$device" "${flags[@]}"
  rc=$?
  # 124: stopped at PEER_TIMEOUT; dsflow-run still printed its rate so far.
  [ $rc = 0 ] || [ $rc = 124 ] || status=1
  tail -n 2 "$out/peer-dsflow-$prec.txt"
  logs+=(--dsflow "$prec=$out/peer-dsflow-$prec.txt")
done

jsons=()
for prec in "${precisions[@]}" bf16; do
  flags=(--dtype "$prec")
  [ "$prec" = tf32 ] && flags=(--dtype fp32 --tf32)
  echo "-- torch_peer.py ${flags[*]} ${compile[*]}"
  logged "$out/peer-torch-$prec.txt" timeout "$limit" "$python" "$peer_py" \
    --spec "$peer/$model.spec" --seq-len "$seq" --micro-batch "$mb" --steps "$steps" \
    --warmup "$warmup" "${flags[@]}" --device "$device" "${compile[@]}" "${mode[@]}" \
    --data "$data" --json "$out/peer-torch-$prec.json" || status=1
  tail -n 1 "$out/peer-torch-$prec.txt" | cut -c1-200
  jsons+=(--torch "$out/peer-torch-$prec.json")
done

"$python" "$root/bench/cuda/peer_report.py" "${logs[@]}" "${jsons[@]}" --warmup "$warmup" \
  --check "$out/peer-check.txt" --commands "$commands" --device-name "$gpu" \
  --dsflow-device "$device" --output "$out/peer-benchmark.md" || status=1
exit $status
