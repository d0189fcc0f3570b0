#!/usr/bin/env bash
# Distributed training with torchrun:  tools/dist_train.sh CONFIG GPUS [tools/train.py options]
# Multi-node: NNODES (default 1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500).
# Without CUDA, GPUS CPU processes train on the gloo backend.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
