#!/usr/bin/env bash
# Training on a SLURM cluster, one task per GPU (MMDetection's script):
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [GPUS] [tools/train.py options]
# GPUS (default: $GPUS, else 8) is the total number of tasks; a 5th argument that is a positive
# integer is GPUS, anything else is passed to tools/train.py.
# Environment: GPUS_PER_NODE (min(GPUS, 8)), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options,
# e.g. "--quotatype=auto"), PYTHON (python), MASTER_PORT (29500; the first host of
# SLURM_NODELIST is the master). Each task runs tools/train.py --launcher slurm, which reads
# SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and SLURM_NODELIST.
set -euo pipefail

if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [GPUS] [tools/train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
case "${1:-}" in
    ''|*[!0-9]*) ;;
    *) GPUS=$1; shift ;;
esac
case "$GPUS" in
    ''|*[!0-9]*|0) echo "$0: GPUS must be a positive integer, got '$GPUS'" >&2; exit 2 ;;
esac
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# SRUN_ARGS is split into words on purpose (several srun options in one variable)
# shellcheck disable=SC2086
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "$@"
