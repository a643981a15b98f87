#!/bin/bash
# One task per node (started by srun from slurm/job.sh): starts this node's training processes.
# SLURM_NODEID is read here, on each node, so every node gets its own machine rank.
set -euo pipefail
: "${NNODES:?}" "${GPUS_PER_NODE:?}" "${MASTER_ADDR:?}" "${MASTER_PORT:?}" "${CONFIG:?}" "${RUN_DIR:?}"
NODE_RANK=${SLURM_NODEID:?launch_node.sh runs under srun}

if [ -n "${ACTIVATE:-}" ]; then
    eval "$ACTIVATE"  # e.g. "source .venv/bin/activate" or "module load cuda; conda activate distgan"
fi
# If a launcher is signalled directly (scancel --signal, preemption), its agent forwards these.
export PET_SIGNALS_TO_HANDLE="SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"

args=(--config "$CONFIG" --run-dir "$RUN_DIR")
if [ -n "${DATA:-}" ]; then
    args+=("data.shards=$DATA")
fi
read -r -a overrides <<< "${OVERRIDES:-}"
args+=("${overrides[@]}")

case "${LAUNCHER:-accelerate}" in
    accelerate)
        exec accelerate launch --config_file "$LAUNCH_CONFIG" \
            --num_machines "$NNODES" --num_processes "$((NNODES * GPUS_PER_NODE))" \
            --machine_rank "$NODE_RANK" --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" \
            -m distgan train "${args[@]}"
        ;;
    torchrun)
        exec torchrun --nnodes "$NNODES" --nproc_per_node "$GPUS_PER_NODE" --node_rank "$NODE_RANK" \
            --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
            -m distgan train "${args[@]}"
        ;;
    *)
        echo "launch_node.sh: LAUNCHER must be accelerate or torchrun, not ${LAUNCHER}" >&2
        exit 2
        ;;
esac
