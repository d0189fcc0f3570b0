#!/usr/bin/env bash
# The shapes demo (`make demo`): generate the synthetic dataset if missing, train SOLOv2-light
# R18 from scratch with tools/train.py, evaluate with tools/test_ins.py --eval segm (COCO mask
# AP), draw the validation images with tools/test_ins_vis.py and plot the losses with
# tools/analyze_logs.py. The last line reads
#   demo finished: segm_mAP=0.361 train_eval_seconds=703 pictures=work_dirs/demo/vis
# (train_eval_seconds: wall time of training plus evaluation; data generation, drawing and
# plotting are not counted; measured on a 2-core machine: mask AP 0.361 in 624-703 s).
#
# Environment overrides:
#   CONFIG     config to train           (configs/shapes/solov2_light_r18_shapes.py)
#   WORK_DIR   run folder                (work_dirs/demo; each run replaces its files)
#   DATA_DIR   dataset folder            (data/shapes; another folder is passed to the tools
#              with --cfg-options data.{train,test}.ann_file/img_prefix=...)
#   NUM_TRAIN, NUM_VAL  images to generate (1000, 100)
#   SEED       training seed             (0)
#   PY         python                    (.venv/bin/python; `make setup` creates it)
#   EXTRA_TRAIN_ARGS  more tools/train.py options, e.g. "--cfg-options total_epochs=1"
# OMP_WAIT_POLICY defaults to PASSIVE: on a CPU shared with other jobs, spinning OpenMP
# threads make training several times slower; on an idle machine it costs next to nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=${CONFIG:-configs/shapes/solov2_light_r18_shapes.py}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
DATA_DIR=${DATA_DIR:-data/shapes}
SEED=${SEED:-0}
PY=${PY:-.venv/bin/python}
NUM_TRAIN=${NUM_TRAIN:-1000}
NUM_VAL=${NUM_VAL:-100}
EXTRA_TRAIN_ARGS=${EXTRA_TRAIN_ARGS:-}
DATA_OPTS=()
if [ "${DATA_DIR%/}" != "data/shapes" ]; then
    D=${DATA_DIR%/}
    for kv in "data.train.ann_file=$D/annotations/instances_train.json" \
              "data.train.img_prefix=$D/train/" \
              "data.val.ann_file=$D/annotations/instances_val.json" "data.val.img_prefix=$D/val/" \
              "data.test.ann_file=$D/annotations/instances_val.json" "data.test.img_prefix=$D/val/"; do
        DATA_OPTS+=(--cfg-options "$kv")
    done
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export PYTHONUNBUFFERED=1

if [ ! -x "$PY" ]; then
    echo "== $PY not found: running make setup"
    make setup
fi

now() { "$PY" -c 'import time; print(f"{time.time():.3f}")'; }
elapsed() { "$PY" -c "print(f'{$2 - $1:.1f}')"; }

echo "== [1/5] dataset: $DATA_DIR"
"$PY" tools/make_shapes.py --out "$DATA_DIR" --num-train "$NUM_TRAIN" --num-val "$NUM_VAL" --if-missing

echo "== [2/5] training $CONFIG -> $WORK_DIR ($(nproc) CPU cores; load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a))"
# start afresh: remove what an earlier demo run left (only the files this script makes)
if [ -d "$WORK_DIR" ]; then
    rm -rf "${WORK_DIR:?}/vis"
    rm -f "$WORK_DIR"/*.pth "$WORK_DIR"/*.log "$WORK_DIR"/*.log.json "$WORK_DIR"/results.* \
        "$WORK_DIR"/loss_curve.png
fi
mkdir -p "$WORK_DIR"
t0=$(now)
# shellcheck disable=SC2086
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --seed "$SEED" --no-validate \
    --overwrite "${DATA_OPTS[@]}" $EXTRA_TRAIN_ARGS
t1=$(now)
train_s=$(elapsed "$t0" "$t1")
echo "== training took ${train_s} s"

echo "== [3/5] evaluating (COCO mask AP on the val split)"
CKPT="$WORK_DIR/latest.pth"
t2=$(now)
"$PY" tools/test_ins.py "$CONFIG" "$CKPT" --eval segm --out "$WORK_DIR/results.pkl" \
    "${DATA_OPTS[@]}"
t3=$(now)
eval_s=$(elapsed "$t2" "$t3")
echo "== evaluation took ${eval_s} s"

echo "== [4/5] drawing the val images -> $WORK_DIR/vis"
"$PY" tools/test_ins_vis.py "$CONFIG" "$CKPT" --save_dir "$WORK_DIR/vis" --score_thr 0.3 \
    "${DATA_OPTS[@]}"

echo "== [5/5] loss curve -> $WORK_DIR/loss_curve.png"
LOG_JSON=$(ls -t "$WORK_DIR"/*.log.json | head -n 1)
"$PY" tools/analyze_logs.py plot_curve "$LOG_JSON" --keys loss_ins loss_cate \
    --title "$(basename "$CONFIG" .py)" --out "$WORK_DIR/loss_curve.png"

MAP=$("$PY" -c "import json,sys; m=json.load(open(sys.argv[1]))['metrics']['segm_mAP']; print(f'{m:.3f}')" \
    "$WORK_DIR/results.eval.json")
TOTAL=$("$PY" -c "print(round($train_s + $eval_s))")
echo "demo finished: segm_mAP=${MAP} train_eval_seconds=${TOTAL} pictures=${WORK_DIR}/vis"
