#!/usr/bin/env bash
# GPU check of mmdet_solo on a CUDA machine (written for one H100/H200 with 16 cores and no
# internet; <= 8 minutes in all). Run from anywhere in the repository:
#
#     bash tools/dev/gpu_check.sh                          # on the GPU machine
#     GPU_CHECK_ALLOW_CPU=1 bash tools/dev/gpu_check.sh    # dry run on a CPU machine (~2-4 min)
#
# Steps (each under `timeout`, clamped to what is left of the budget; a failed step does not
# stop the others; the exit code is 1 when any step failed):
#   setup   venv by `make setup` (skipped when $VENV/.installed exists and imports work)
#   env     (a) nvidia-smi name/memory/driver, torch / CUDA / cuDNN versions, nvcc
#   ext     (b) the Matrix NMS extension built with CUDA (FORCE_CUDA=1 when nvcc exists; only
#               rebuilt when the installed one has no CUDA kernel), `python -m mmdet_solo.ops`
#   tests   (c) pytest over the test files that mention CUDA, `-k "cuda or matrix_nms_ext"`;
#               on a GPU, a CUDA test skipped for want of CUDA is a failure
#   data    synthetic shapes data (tools/make_shapes.py): ITERS x BATCH train images
#   train   (d) SOLOv2 R50 (configs/solov2/solov2_r50_fpn_8gpu_1x.py architecture, 5 classes),
#               fp16 = dict(loss_scale='dynamic') (float16 autocast + GradScaler on CUDA), one
#               epoch of ~ITERS iterations; fails unless the last logged loss is finite
#   dist    (d) the same with 2 processes through tools/dist_train.sh (NCCL) when
#               `nvidia-smi -L` lists >= 2 GPUs (GPU_CHECK_DIST=1 forces it: on a CPU it runs
#               over gloo; NCCL refuses 2 ranks on 1 GPU)
#   bench1, bench8
#           (e) benchmarks/bench_inference.py --device cuda, batch 1 (+ training step) and 8
#   trt     ONNX export of SOLOv2-light R18 (tools/deployment/pytorch2onnx.py --verify) built
#               into a TensorRT engine by trtexec (skipped when trtexec is not installed)
#   summary (f) markdown rows for BENCHMARKS.md (also in $RUN_DIR/summary.md)
#
# Environment (all optional):
#   GPU_CHECK_ALLOW_CPU=1   without a GPU: skip the CUDA-only parts, train 3 iterations on tiny
#                           data, bench the light R18 model at 224x320 on the CPU
#   GPU_CHECK_BUDGET=480    seconds for everything; GPU_CHECK_DIR: where outputs go (default
#                           work_dirs/gpu_check/<date_time>); GPU_CHECK_VENV=.venv
#   GPU_CHECK_ITERS / GPU_CHECK_BATCH / GPU_CHECK_SCALE="W H"   training size (50 / 4 / 640 512)
#   GPU_CHECK_SETUP=make    always run `make setup` (else an installed venv is reused)
#   GPU_CHECK_REBUILD=1     rebuild the extension even when it already has a CUDA kernel
#   GPU_CHECK_STEPS="setup env ..."   run only these steps (the names above)
#   GPU_CHECK_PYTHON        the interpreter whose torch the venv may reuse (default python3)
#   GPU_CHECK_SYSTEM_TORCH=auto|1|0   reuse that torch (auto: when it sees a GPU; see below)
#   GPU_CHECK_ONLINE=1      let pip reach its index when the venv reuses the system torch
#   GPU_CHECK_WHEELS=DIR    wheels for that offline install (default ./.whl)
#
# Offline machines: when the system python (GPU_CHECK_PYTHON) already has a CUDA torch, the venv
# is made with --system-site-packages and `make setup TORCH_SPEC="torch torchvision"` (so the
# pinned torch of the Makefile is not downloaded) runs with PIP_NO_INDEX=1; packages the image
# lacks (pycocotools and faster-coco-eval on this workplace's H200 image) must then be wheels in
# GPU_CHECK_WHEELS (PIP_FIND_LINKS), e.g. made on a machine with pip access by
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       pycocotools 'faster-coco-eval>=1.6'
# (.whl must then travel with the repo: on the device tool, list it in .git/info/exclude and carry)
# Otherwise `make setup` installs the pinned torch from the configured index / wheel cache.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

export ROOT
export VENV="${GPU_CHECK_VENV:-.venv}"
export PY="$ROOT/$VENV/bin/python"
[[ "$VENV" = /* ]] && PY="$VENV/bin/python"
export BUDGET="${GPU_CHECK_BUDGET:-480}"
export ALLOW_CPU="${GPU_CHECK_ALLOW_CPU:-0}"
export RUN_DIR="${GPU_CHECK_DIR:-$ROOT/work_dirs/gpu_check/$(date +%Y%m%d_%H%M%S)}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
export LOG="$RUN_DIR/gpu_check.log"
export WHEELS="${GPU_CHECK_WHEELS:-$ROOT/.whl}"
export STEPS=" ${GPU_CHECK_STEPS:-setup env ext tests data train dist bench1 bench8 trt} "
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
export NPROC="$(nproc 2>/dev/null || echo 4)"
START_EPOCH=$(date +%s)
export START_EPOCH

log() { echo "[$(date '+%Y-%m-%d %H:%M:%S') +$(( $(date +%s) - START_EPOCH ))s] $*"; }
export -f log

# ------------------------------------------------------------------------------- the machine
if [ -z "${CUDA_HOME:-}" ] && ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
fi
NGPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
    NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
export NGPU
if [ "$NGPU" -ge 1 ]; then
    export MODE=cuda
elif [ "$ALLOW_CPU" = 1 ]; then
    export MODE=cpu
else
    export MODE=cuda  # no GPU and no GPU_CHECK_ALLOW_CPU: the CUDA steps run and fail
fi
export HAVE_NVCC=0
if command -v nvcc >/dev/null 2>&1; then HAVE_NVCC=1; fi
if [ "$MODE" = cuda ] && [ -z "${TORCH_CUDA_ARCH_LIST:-}" ] && [ "$NGPU" -ge 1 ]; then
    # compile the CUDA kernel for the GPUs present only (e.g. "9.0"): faster build
    caps=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | sort -u | paste -sd';' || true)
    if [ -n "$caps" ]; then export TORCH_CUDA_ARCH_LIST="$caps"; fi
fi
export MAX_JOBS="${MAX_JOBS:-$NPROC}"

if [ "$MODE" = cuda ]; then
    export ITERS="${GPU_CHECK_ITERS:-50}" BATCH="${GPU_CHECK_BATCH:-4}" SCALE="${GPU_CHECK_SCALE:-640 512}"
    export WORKERS=4 LOG_INTERVAL=10
else
    export ITERS="${GPU_CHECK_ITERS:-3}" BATCH="${GPU_CHECK_BATCH:-2}" SCALE="${GPU_CHECK_SCALE:-192 160}"
    export WORKERS=0 LOG_INTERVAL=1
fi

log "gpu_check: repo $ROOT, outputs in $RUN_DIR, mode $MODE, $NGPU GPU(s), nvcc: $HAVE_NVCC," \
    "budget ${BUDGET}s, $NPROC cores"

# ------------------------------------------------------------------------------- step runner
STEP_NAMES=()
STEP_STATUS=()
STEP_SECS=()
SKIP=77  # a step function exits with this when it does not apply here

run_step() {  # NAME TIMEOUT_S FUNCTION
    local name=$1 limit=$2 fn=$3 left rc t0 status
    if [[ "$STEPS" != *" $name "* ]]; then
        log "=== step $name: skip (not in GPU_CHECK_STEPS)"
        STEP_NAMES+=("$name"); STEP_STATUS+=("skip (not selected)"); STEP_SECS+=(0)
        return 0
    fi
    left=$(( BUDGET - ($(date +%s) - START_EPOCH) ))
    if [ "$left" -lt 20 ]; then
        log "=== step $name: not run, only ${left}s of the budget left"
        STEP_NAMES+=("$name"); STEP_STATUS+=("FAIL (no time left)"); STEP_SECS+=(0)
        return 0
    fi
    if [ "$limit" -gt "$left" ]; then limit=$left; fi
    log "=== step $name (timeout ${limit}s)"
    t0=$(date +%s)
    set +e
    timeout -k 10 "$limit" bash -c "set -euo pipefail; $fn"
    rc=$?
    set -e
    case $rc in
        0) status=ok ;;
        "$SKIP") status=skip ;;
        124|137) status="FAIL (timeout ${limit}s)" ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    STEP_NAMES+=("$name"); STEP_STATUS+=("$status"); STEP_SECS+=($(( $(date +%s) - t0 )))
    log "--- step $name: $status ($(( $(date +%s) - t0 ))s)"
    echo "$name=$status" >>"$RUN_DIR/steps.txt"
}

# ------------------------------------------------------------------------------- steps
venv_ok() {
    [ -f "$ROOT/$VENV/.installed" ] || [ -f "$VENV/.installed" ] || return 1
    "$PY" -c 'import torch, pycocotools, mmdet_solo' >/dev/null 2>&1
}
export -f venv_ok

setup_without_make() {  # VAR=VALUE...: the `setup` recipe of the Makefile, for machines without make
    local VENV=.venv PYTHON=python3 TORCH_SPEC a
    TORCH_SPEC=$(sed -n 's/^TORCH_SPEC ?= *//p' Makefile)
    for a in "$@"; do
        case $a in
            VENV=*) VENV=${a#VENV=} ;; PYTHON=*) PYTHON=${a#PYTHON=} ;;
            TORCH_SPEC=*) TORCH_SPEC=${a#TORCH_SPEC=} ;;
        esac
    done
    local py="$VENV/bin/python"
    test -x "$py" || "$PYTHON" -m venv "$VENV"
    "$py" -m pip install --upgrade pip setuptools wheel
    # shellcheck disable=SC2086
    "$py" -m pip install $TORCH_SPEC
    "$py" -m pip install -r requirements/runtime.txt -r requirements/tests.txt
    "$py" -m pip install -r requirements/build.txt
    "$py" -m pip install -v --no-build-isolation --no-deps -e .
    touch "$VENV/.installed"
}
export -f setup_without_make

step_setup() {
    if [ "${GPU_CHECK_SETUP:-}" != make ] && venv_ok; then
        log "venv $VENV already set up ($VENV/.installed): not running make setup" \
            "(GPU_CHECK_SETUP=make to run it)"
        return 0
    fi
    local args=() syspy="${GPU_CHECK_PYTHON:-python3}"
    if [ -d "$VENV" ] && ! "$PY" -c 'import torch' >/dev/null 2>&1; then
        log "$VENV exists but its python/torch does not work here: moving it to $VENV.stale.$$"
        mv "$VENV" "$VENV.stale.$$"
    fi
    local systorch="${GPU_CHECK_SYSTEM_TORCH:-auto}"
    if [ "$systorch" = auto ]; then
        systorch=0
        if [ "$MODE" = cuda ] && "$syspy" -c \
            'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
            systorch=1
        fi
    fi
    if [ "$systorch" = 1 ]; then
        log "reusing the torch of $syspy ($("$syspy" -c 'import torch; print(torch.__version__)')):" \
            "venv with --system-site-packages, make setup TORCH_SPEC='torch torchvision'"
        # --without-pip: the venv's own pip/setuptools (ensurepip's, older) would shadow the
        # system's, and torch's metadata may ask for a newer setuptools than ensurepip's, which
        # cannot be fetched offline. --system-site-packages gives the *base* interpreter's
        # packages; when $syspy is itself a venv (e.g. /opt/torch/.venv/bin/python3), its
        # site-packages come in by a .pth file (after the venv's own, so what make setup
        # installs takes precedence; pip and setuptools come from there)
        [ -x "$PY" ] || "$syspy" -m venv --without-pip --system-site-packages "$VENV"
        local pth
        pth="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_gpu_check_system_site.pth"
        "$syspy" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' \
            | sort -u >"$pth"
        log "$pth: $(paste -sd' ' "$pth")"
        args+=(TORCH_SPEC="torch torchvision" PYTHON="$syspy")
        if [ "${GPU_CHECK_ONLINE:-0}" != 1 ]; then
            export PIP_NO_INDEX=1
            if [ -d "$WHEELS" ]; then
                export PIP_FIND_LINKS="$WHEELS"
            fi
            log "offline pip: PIP_NO_INDEX=1, PIP_FIND_LINKS=${PIP_FIND_LINKS:-<none>}"
        fi
    fi
    if [ "$HAVE_NVCC" = 1 ] && [ "$MODE" = cuda ]; then export FORCE_CUDA=1; fi
    log "make setup VENV=$VENV ${args[*]} (FORCE_CUDA=${FORCE_CUDA:-}, TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-})"
    local maker=(make setup)
    if ! command -v make >/dev/null 2>&1; then
        log "no make here: running the Makefile's setup recipe with bash"
        maker=(setup_without_make)
    fi
    if ! "${maker[@]}" VENV="$VENV" "${args[@]}" >"$RUN_DIR/setup.log" 2>&1; then
        tail -n 30 "$RUN_DIR/setup.log"
        local missing
        missing=$(sed -n 's/.*No matching distribution found for \(.*\)/\1/p' "$RUN_DIR/setup.log" | paste -sd' ')
        if [ -n "$missing" ]; then
            log "hint: pip found no distribution for: $missing. Offline, put wheels of them for this" \
                "python ($("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null)) in" \
                "$WHEELS (see the header)"
        fi
        return 1
    fi
    grep 'mmdet_solo setup:' "$RUN_DIR/setup.log" || true
    venv_ok
}

step_env() {
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=index,name,memory.total,driver_version,compute_cap --format=csv || true
        nvidia-smi -L || true
    else
        log "no nvidia-smi"
    fi
    if [ "$HAVE_NVCC" = 1 ]; then nvcc --version | tail -n 2; else log "no nvcc on PATH"; fi
    "$PY" - <<'EOF'
import json, os, platform, torch
info = dict(torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            cuda_available=torch.cuda.is_available(), gpus=torch.cuda.device_count(),
            python=platform.python_version())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(card=p.name, memory_gib=round(p.total_memory / 2 ** 30, 1),
                capability=f'{p.major}.{p.minor}', sms=p.multi_processor_count)
else:
    info.update(card=f'CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)')
for k, v in info.items():
    print(f'{k}: {v}')
with open(os.path.join(os.environ['RUN_DIR'], 'env.json'), 'w') as f:
    json.dump(info, f)
if os.environ['MODE'] == 'cuda' and not torch.cuda.is_available():
    raise SystemExit('torch sees no GPU (CUDA build: %s)' % torch.version.cuda)
EOF
}

has_cuda_kernel() {
    "$PY" -c 'import sys; from mmdet_solo.ops import _ext_loader as e; sys.exit(0 if e.has_kernel("cuda") else 1)' 2>/dev/null
}
export -f has_cuda_kernel

step_ext() {
    if [ "$MODE" != cuda ]; then
        "$PY" -m mmdet_solo.ops
        log "no GPU: CUDA build skipped"
        return "$SKIP"
    fi
    if has_cuda_kernel && [ "${GPU_CHECK_REBUILD:-0}" != 1 ]; then
        log "the installed extension already has a CUDA kernel (GPU_CHECK_REBUILD=1 to rebuild)"
    elif [ "${GPU_CHECK_REBUILD:-0}" != 1 ] && [ -f "$RUN_DIR/setup.log" ] && \
         grep -q 'building the CUDA kernel failed' "$RUN_DIR/setup.log"; then
        grep -B 30 'building the CUDA kernel failed' "$RUN_DIR/setup.log" | tail -n 40
        log "make setup's CUDA build failed just now (above; $RUN_DIR/setup.log): not building again"
        "$PY" -m mmdet_solo.ops || true
        return 1
    else
        if [ "$HAVE_NVCC" != 1 ] && [ -z "${CUDA_HOME:-}" ]; then
            "$PY" -m mmdet_solo.ops || true
            log "no nvcc / CUDA_HOME: cannot build the CUDA kernel"
            return 1
        fi
        log "building: FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-<torch default>}" \
            "MAX_JOBS=$MAX_JOBS pip install -v --no-build-isolation --no-deps -e ."
        # --no-deps --no-build-isolation: pip needs no index for this
        if ! PIP_NO_INDEX=1 FORCE_CUDA=1 "$PY" -m pip install -v --no-build-isolation --no-deps -e . \
                >"$RUN_DIR/ext_build.log" 2>&1; then
            tail -n 40 "$RUN_DIR/ext_build.log"
            return 1
        fi
        grep 'mmdet_solo setup:' "$RUN_DIR/ext_build.log" || true
    fi
    "$PY" -m mmdet_solo.ops
    has_cuda_kernel || { log "the extension has no CUDA kernel (see $RUN_DIR/ext_build.log)"; return 1; }
}

step_tests() {
    local files
    # the test files with CUDA code paths / skip markers
    files=$(grep -rlE "cuda" tests --include='test_*.py' | sort | tr '\n' ' ')
    log "test files mentioning cuda: $files"
    set +e
    # shellcheck disable=SC2086
    "$PY" -m pytest -q -rs -p no:cacheprovider $files -k "cuda or matrix_nms_ext" 2>&1 \
        | tee "$RUN_DIR/tests.log"
    local rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || return "$rc"
    if [ "$MODE" = cuda ] && grep -E "SKIPPED.*(needs CUDA|needs a GPU|CUDA kernel)" "$RUN_DIR/tests.log"; then
        log "CUDA tests were skipped on a GPU machine"
        return 1
    fi
}

step_data() {
    "$PY" tools/make_shapes.py --out "$RUN_DIR/shapes" --num-train $(( ITERS * BATCH )) \
        --num-val 4 --seed 0 --if-missing --quiet
}

write_train_config() {  # -> $RUN_DIR/solov2_r50_shapes_fp16.py
    "$PY" - <<'EOF'
import os
from mmdet_solo.config import Config
root, run = os.environ['ROOT'], os.environ['RUN_DIR']
shapes = Config.fromfile(os.path.join(root, 'configs/shapes/solov2_light_r18_shapes.py'))
classes = tuple(shapes.classes)
w, h = (int(v) for v in os.environ['SCALE'].split())
batch, workers = int(os.environ['BATCH']), int(os.environ['WORKERS'])
try:  # ImageNet weights only when already cached (no downloads); else from scratch
    from mmdet_solo.utils.checkpoint import resolve_model_zoo
    resolve_model_zoo('torchvision://resnet50')
    model = "dict(bbox_head=dict(num_classes=len(classes)))"
    note = 'torchvision://resnet50 weights (cached)'
except Exception:
    model = ("dict(pretrained=None, backbone=dict(frozen_stages=-1, norm_eval=False),\n"
             "             bbox_head=dict(num_classes=len(classes)))")
    note = 'random weights, BatchNorm trained (no cached torchvision://resnet50)'
# the shapes config's datasets and pipelines, on this run's data, at the input size SCALE
data = shapes.to_dict()['data']
for split in ('train', 'val', 'test'):
    for key in ('ann_file', 'img_prefix'):
        data[split][key] = data[split][key].replace(shapes.data_root, os.path.join(run, 'shapes') + '/')
    steps = list(data[split]['pipeline'])
    while steps:
        step = steps.pop()
        if 'img_scale' in step:
            step['img_scale'] = (w, h)
        steps += step.get('transforms', [])
data.update(_delete_=True, imgs_per_gpu=batch, workers_per_gpu=workers)
text = f'''# Written by tools/dev/gpu_check.sh: the SOLOv2 R50 model of
# configs/solov2/solov2_r50_fpn_8gpu_1x.py on the synthetic shapes data ({note}),
# fp16 (float16 autocast + dynamic GradScaler on CUDA), one epoch.
_base_ = {os.path.join(root, 'configs/solov2/solov2_r50_fpn_8gpu_1x.py')!r}
classes = {classes!r}
model = {model}
data = {data!r}
optimizer = dict(lr={0.01 * batch / 16!r})  # the release's 0.01 for 16 images per batch
total_epochs = 1
fp16 = dict(loss_scale='dynamic')
checkpoint_config = dict(interval=1)
log_config = dict(interval={int(os.environ['LOG_INTERVAL'])}, hooks=[dict(type='TextLoggerHook')])
'''
path = os.path.join(run, 'solov2_r50_shapes_fp16.py')
with open(path, 'w') as f:
    f.write(text)
print(f'config {path}: {note}, {batch} images/GPU, input {w}x{h}')
EOF
}
export -f write_train_config

check_train_log() {  # WORK_DIR PROCS -> prints the last loss, writes WORK_DIR/result.json
    "$PY" - "$1" "$2" <<'EOF'
import glob, json, math, os, statistics, sys
work_dir, procs = sys.argv[1], int(sys.argv[2])
logs = sorted(glob.glob(os.path.join(work_dir, '*.log.json')))
if not logs:
    sys.exit(f'no *.log.json in {work_dir}')
recs = [json.loads(ln) for ln in open(logs[-1]) if ln.strip()]
train = [r for r in recs if r.get('mode') == 'train']
if not train:
    sys.exit(f'no training record in {logs[-1]}')
last = train[-1]
times = [r['time'] for r in train[1:]] or [train[0]['time']]  # the first window has the warm-up
batch = int(os.environ['BATCH'])
res = dict(iterations=last['iter'], procs=procs, batch_per_proc=batch, loss=last['loss'],
           loss_ins=last.get('loss_ins'), loss_cate=last.get('loss_cate'),
           s_per_iter=statistics.median(times), memory_mb=last.get('memory'),
           images_per_s=batch * procs / statistics.median(times), first_loss=train[0]['loss'])
with open(os.path.join(work_dir, 'result.json'), 'w') as f:
    json.dump(res, f)
print(f"{procs} process(es): {res['iterations']} iterations, loss {res['first_loss']:.4f} (first log)"
      f" -> {res['loss']:.4f} (last), {res['s_per_iter']:.3f} s/iter, {res['images_per_s']:.1f} "
      f"images/s, peak memory {res['memory_mb']} MB")
if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (res['loss'], res['first_loss'])):
    sys.exit(f"non-finite loss: {res['loss']}")
EOF
}
export -f check_train_log

show_train_log() {  # LOG RC: the trainer's progress lines; the end of the log on failure
    grep -E "Distributed training|Start running|Epoch \[|mixed precision|Saved checkpoint" "$1" \
        | tail -n 20 || true
    if [ "$2" -ne 0 ]; then tail -n 30 "$1"; fi
}
export -f show_train_log

step_train() {
    [ -f "$RUN_DIR/shapes/annotations/instances_train.json" ] || { log "no shapes data"; return 1; }
    write_train_config
    local wd="$RUN_DIR/train_1proc"
    log "tools/train.py (output in $wd.log)"
    local rc=0
    "$PY" tools/train.py "$RUN_DIR/solov2_r50_shapes_fp16.py" --work-dir "$wd" --seed 0 \
        --no-validate --overwrite >"$wd.log" 2>&1 || rc=$?
    show_train_log "$wd.log" "$rc"
    [ "$rc" -eq 0 ] || return "$rc"
    check_train_log "$wd" 1
}

step_dist() {
    [ -f "$RUN_DIR/solov2_r50_shapes_fp16.py" ] || write_train_config
    local wd="$RUN_DIR/train_2proc"
    # NCCL is the config's dist_params.backend; without CUDA init_dist falls back to gloo
    log "tools/dist_train.sh ... 2 (output in $wd.log)"
    local rc=0
    PYTHON="$PY" PORT=$(( 29500 + RANDOM % 500 )) OMP_NUM_THREADS=$(( NPROC / 2 > 0 ? NPROC / 2 : 1 )) \
        bash tools/dist_train.sh "$RUN_DIR/solov2_r50_shapes_fp16.py" 2 --work-dir "$wd" --seed 0 \
        --no-validate --overwrite >"$wd.log" 2>&1 || rc=$?
    show_train_log "$wd.log" "$rc"
    [ "$rc" -eq 0 ] || return "$rc"
    check_train_log "$wd" 2
}

bench() {  # BATCH_SIZE EXTRA_ARGS...
    local n=$1
    shift
    if [ "$MODE" = cuda ]; then
        "$PY" benchmarks/bench_inference.py --device cuda --threads "$NPROC" --batch-size "$n" \
            --json "$RUN_DIR/bench_b$n.json" "$@"
    else  # a quick CPU stand-in that exercises the same flags and the summary
        "$PY" benchmarks/bench_inference.py --device cpu --threads "$NPROC" --batch-size "$n" \
            --config configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py --shape 224 320 \
            --warmup $(( n == 1 ? 1 : 0 )) --repeat 1 --no-train --json "$RUN_DIR/bench_b$n.json"
    fi
}
export -f bench

step_trt() {  # ONNX export (docs/DEPLOYMENT.md) built into a TensorRT engine by trtexec
    if ! command -v trtexec >/dev/null 2>&1; then
        log "trtexec not found (TensorRT not installed): skip"
        return "$SKIP"
    fi
    local onnx="$RUN_DIR/solov2_light_r18.onnx"
    "$PY" tools/deployment/pytorch2onnx.py configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py \
        none --output-file "$onnx" --shape 448 672 --dynamic-export --verify || return 1
    trtexec --onnx="$onnx" --minShapes=img:1x3x320x320 --optShapes=img:1x3x448x672 \
        --maxShapes=img:2x3x800x1344 --iterations=20 --saveEngine="$RUN_DIR/solov2_light_r18.plan" \
        >"$RUN_DIR/trtexec.log" 2>&1 || { tail -n 40 "$RUN_DIR/trtexec.log"; return 1; }
    grep -E "Throughput|Latency: min" "$RUN_DIR/trtexec.log" | tail -n 3
}

step_bench1() { bench 1 --warmup 5 --repeat 20; }
step_bench8() { bench 8 --warmup 3 --repeat 10 --no-train; }

export SKIP
export -f step_setup step_env step_ext step_tests step_data step_train step_dist step_bench1 \
    step_bench8 step_trt

# ------------------------------------------------------------------------------- run
rm -f "$RUN_DIR/steps.txt"
run_step setup 300 step_setup
if ! venv_ok; then
    log "no working venv: the remaining steps cannot run"
fi
run_step env 60 step_env
run_step ext 300 step_ext
run_step tests 180 step_tests
run_step data 90 step_data
run_step train 180 step_train
if [ "$NGPU" -ge 2 ] || [ "${GPU_CHECK_DIST:-0}" = 1 ]; then
    run_step dist 180 step_dist
else
    log "=== step dist: skip ($NGPU GPU(s): no 2-process run; GPU_CHECK_DIST=1 forces it)"
    STEP_NAMES+=(dist); STEP_STATUS+=(skip); STEP_SECS+=(0)
    echo "dist=skip" >>"$RUN_DIR/steps.txt"
fi
run_step bench1 150 step_bench1
run_step bench8 120 step_bench8
run_step trt 240 step_trt

# ------------------------------------------------------------------------------- summary
log "=== summary"
FAILED=0
for i in "${!STEP_NAMES[@]}"; do
    case "${STEP_STATUS[$i]}" in FAIL*) FAILED=1 ;; esac
done
{
    echo "| step | status | seconds |"
    echo "|---|---|---|"
    for i in "${!STEP_NAMES[@]}"; do
        echo "| ${STEP_NAMES[$i]} | ${STEP_STATUS[$i]} | ${STEP_SECS[$i]} |"
    done
    echo
    "$PY" - 2>&1 <<'EOF' || echo "(no figures: $PY could not read the results)"
import datetime, glob, json, os
run, mode = os.environ['RUN_DIR'], os.environ['MODE']
def load(p):
    try:
        with open(os.path.join(run, p)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
env = load('env.json') or {}
card = env.get('card', '?')
torch_v = env.get('torch', '?')
cuda_v = env.get('cuda') if mode == 'cuda' else f"none (CPU run; torch built for CUDA {env.get('cuda')})"
date = datetime.date.today().isoformat()
rows = []
for n in (1, 8):
    b = load(f'bench_b{n}.json')
    if not b:
        continue
    prec = 'bf16 autocast' if b.get('bf16') else 'fp32'
    for c in b['cases']:
        rows.append((f"{c['case']} inference, {c['input'][0]}x{c['input'][1]}, batch {c['batch_size']}, "
                     f"{prec}, init weights",
                     f"{c['images_per_s']:.1f} images/s (model() {c['model_s'] * 1000:.1f} ms/batch; "
                     f"backbone+neck {c['backbone_neck_s'] * 1000:.1f}, heads {c['heads_s'] * 1000:.1f}, "
                     f"post-proc {c['postproc_s'] * 1000:.1f} ms)"))
    t = b.get('train_step')
    if t:
        rows.append((f"{t['case']} training step, 800x1216, batch 1, fp32",
                     f"{t['seconds'] * 1000:.1f} ms ({t['gflop']:.0f} GFLOP, {t['gflops'] / 1000:.1f} "
                     f"TFLOP/s; fp32 GEMM {t['gemm_fp32_gflops'] / 1000:.1f} TFLOP/s)"))
scale = 'x'.join(os.environ['SCALE'].split())
for wd in ('train_1proc', 'train_2proc'):
    r = load(os.path.join(wd, 'result.json'))
    if r:
        amp = 'fp16 + GradScaler' if mode == 'cuda' else 'bf16 autocast'
        rows.append((f"SOLOv2 R50 training on shapes (<= {scale}), {r['procs']} process(es) x "
                     f"{r['batch_per_proc']} images, {amp}, {r['iterations']} iterations",
                     f"{r['s_per_iter']:.3f} s/iter, {r['images_per_s']:.1f} images/s, "
                     f"loss {r['first_loss']:.3f} -> {r['loss']:.3f}, peak {r['memory_mb']} MB"))
print('| card | torch | CUDA | date | figure | value |')
print('|---|---|---|---|---|---|')
for fig, val in rows:
    print(f'| {card} | {torch_v} | {cuda_v} | {date} | {fig} | {val} |')
if not rows:
    print('(no figures)')
EOF
} | tee "$RUN_DIR/summary.md"

if [ "$FAILED" = 1 ]; then
    log "gpu_check: FAILED steps: $(grep -E '=FAIL' "$RUN_DIR/steps.txt" | cut -d= -f1 | paste -sd' ')" \
        "(logs in $RUN_DIR)"
    exit 1
fi
log "gpu_check: all steps passed or were skipped (logs in $RUN_DIR)"
