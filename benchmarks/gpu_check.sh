#!/usr/bin/env bash
# One prepared GPU check of tune-app's benchmarks (about 5.5 minutes on one H100; budget 8).
#
#   1. engine throughput on CUDA: timm/resnet50 at 224 px (digits resized), batch 64, amp
#      off / bf16 / fp16, channels_last on and off, tune-app's TrainingRun against the
#      hand-written loop (benchmarks/engine_throughput.py --device cuda), plus the
#      per-epoch checkpoint cost of resnet50;
#   2. GPU packing: 4 trials with tune.resources.gpu 0.25 against 1 trial with gpu 1,
#      total images/s (benchmarks/gpu_packing.py: tune-app search on spec files it writes).
#   3. input pipeline: resnet50 at 224 px, bf16, trained from a folder of 2000 real photos
#      through the image cache, and per item (data.cache: off, 8 workers), against the same
#      model on synthetic in-memory squares (benchmarks/gpu_input.py; target cache >= 0.9x).
#   4. a real out-of-memory: resnet50 at 224 px, fp32, batch 4096 must not fit the card
#      with tune.oom_retry off, and must train with it on, in micro-batches (benchmarks/gpu_oom.py:
#      the micro-batch reached, optimizer steps = batches, peak memory). Needs torch and timm only.
#   5. what train.deterministic costs: resnet50 at 224 px, bf16, training images/s with it off
#      and on (benchmarks/deterministic_cost.py --device cuda), for the README's "Trusting the answer".
#   6. what each fine-tuning knob costs per step: resnet50 at 224 px, bf16, ema / layer_decay /
#      head_lr_mult / mixup / cutmix each against all off (benchmarks/knob_cost.py --device cuda).
#
# Everything goes to $OUT (the device tool's output folder; ./benchmarks/results/gpu_check
# when OUT is unset): engine_throughput_cuda.json, gpu_packing.json, gpu_input.json,
# gpu_oom.json, deterministic_cost_cuda.json, knob_cost_cuda.json, gpu_check.log, nvidia-smi.txt. Any failure stops
# the script with a non-zero exit and a FAILED line.
#
# Ray, Optuna and pydantic are not on the GPU machine, nor scikit-learn (the digits data) and
# grpcio: pack them here first, then carry them (not yet tried: the archive must stay under
# the device tool's 64 MiB; scipy is the large one):
#   bash /work/shared/device/pack-python-deps.sh scikit-learn scipy joblib threadpoolctl grpcio
#   # writes .devpkgs/site.tar.xz (ignored by git)
#   device run: command "bash benchmarks/gpu_check.sh", carry [".devpkgs"], timeout_s 600
# Without .devpkgs only step 1 can run (it needs torch and timm alone); step 2 then fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/results/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
trap 'echo "FAILED: gpu_check.sh line $LINENO (exit $?)"' ERR
started=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - started ))s)"; }

step "environment"
if [ -f .devpkgs/site.tar.xz ]; then
  mkdir -p /tmp/site && tar xJf .devpkgs/site.tar.xz -C /tmp/site
  export PYTHONPATH=/tmp/site:$PWD
else
  echo "warning: no .devpkgs/site.tar.xz (run /work/shared/device/pack-python-deps.sh and carry .devpkgs)"
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || { echo "FAILED: nvidia-smi"; exit 1; }
head -15 "$OUT/nvidia-smi.txt"
python3 - <<'EOF'
import torch, timm
assert torch.cuda.is_available(), "torch sees no CUDA device"
print("torch", torch.__version__, "cuda", torch.version.cuda, "timm", timm.__version__,
      "gpu", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
EOF

step "1. engine throughput: resnet50@224, amp off/bf16/fp16, channels_last on/off"
timeout 330 python3 benchmarks/engine_throughput.py --device cuda --models timm/resnet50@224 \
  --amp off,bf16,fp16 --channels-last on,off --batch-size 64 --steps 0 --repeats 5 --warmup 2 \
  --num-workers 6 --checkpoint-models timm/resnet50@224 --checkpoint-repeats 3 \
  --out "$OUT/engine_throughput_cuda.json"

step "2. packing: 4 trials x gpu 0.25 vs 1 trial x gpu 1 (tune-app search)"
python3 -c "import ray, optuna, pydantic" || { echo "FAILED: ray/optuna/pydantic missing: carry .devpkgs"; exit 1; }
timeout 300 python3 benchmarks/gpu_packing.py --model timm/resnet50@224 --amp bf16 --batch-size 64 \
  --epochs 4 --packed 4 --num-workers 2 --repeats 2 --timeout 140 --out "$OUT/gpu_packing.json"

step "3. input pipeline: resnet50@224 bf16 from the photo cache / per item / synthetic"
python3 -c "import sklearn" || { echo "FAILED: scikit-learn missing (its sample photos): carry .devpkgs"; exit 1; }
timeout 420 python3 benchmarks/gpu_input.py --device cuda --model timm/resnet50 --size 224 --amp bf16 \
  --batch-size 128 --steps 30 --repeats 3 --num-workers 8 --photos 2000 --out "$OUT/gpu_input.json"

step "4. out of memory for real: resnet50@224 fp32, batch 4096, retried in micro-batches"
timeout 240 python3 benchmarks/gpu_oom.py --device cuda --model timm/resnet50 --size 224 --amp off \
  --batch-size 4096 --min-batch 64 --steps 3 --out "$OUT/gpu_oom.json"

step "5. train.deterministic: resnet50@224 bf16, off vs on"
timeout 180 python3 benchmarks/deterministic_cost.py --device cuda --model timm/resnet50 --size 224 --amp bf16 \
  --batch-size 64 --steps 20 --repeats 5 --out "$OUT/deterministic_cost_cuda.json"

step "6. fine-tuning knobs: resnet50@224 bf16, each knob against all off"
timeout 150 python3 benchmarks/knob_cost.py --device cuda --model timm/resnet50 --size 224 --amp bf16 \
  --batch-size 64 --steps 10 --repeats 5 --out "$OUT/knob_cost_cuda.json"

step "done"
ls -l "$OUT"
