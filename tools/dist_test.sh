#!/usr/bin/env bash
# Distributed testing with torchrun:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test_ins.py options]
# One process per GPU (NCCL); without CUDA, GPUS CPU processes on the gloo backend.
# Rank 0 gathers the results in dataset order (the sampler's padding repeats dropped).
# Environment: PYTHON (python), PORT or MASTER_PORT (29500); multi-node, as tools/dist_train.sh:
# NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1): run the same command on every node with
# its NODE_RANK, GPUS processes per node.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test_ins.py options]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
case "$GPUS" in
    ''|*[!0-9]*|0) echo "$0: GPUS must be a positive integer, got '$GPUS'" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-${MASTER_PORT:-29500}}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --nproc_per_node="$GPUS" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    "$DIR/test_ins.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
