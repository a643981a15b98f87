#!/bin/bash
# The body shared by the sbatch scripts: sourced by them, on the batch (head) node. It starts one
# task per node with srun; each task (slurm/launch_node.sh) starts that node's processes.
#
# Stop and requeue: SLURM sends USR1 to this shell only (--signal=B:USR1@N). The trap writes
# RUN_DIR/STOP with "requeue"; every rank sees the file at its next step, all ranks agree, write a
# checkpoint, rank 0 runs `scontrol requeue $SLURM_JOB_ID` and leaves RUN_DIR/REQUEUE_REQUESTED,
# and the processes exit with 75. A file reaches every rank on every node without relying on
# launchers to forward signals (torchrun's agent kills its workers 30 s after forwarding one).
# A requeued job starts this script again with the same RUN_DIR and resumes from the newest
# complete checkpoint.

cd "$PROJECT_DIR" || exit 1
NNODES=${SLURM_NNODES:-1}
# Not `scontrol ... | head -n 1`: under pipefail, scontrol still writing when head exits dies of
# SIGPIPE and takes the job with it (status 141).
HOSTS=$(scontrol show hostnames "$SLURM_JOB_NODELIST")
MASTER_ADDR=${HOSTS%%$'\n'*}
# A port per job, so that two jobs sharing a node do not collide.
MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
export CONFIG DATA RUN_DIR LAUNCH_CONFIG LAUNCHER GPUS_PER_NODE ACTIVATE OVERRIDES NNODES MASTER_ADDR MASTER_PORT

mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR/REQUEUE_REQUESTED"
echo "[distgan sbatch] job ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}): ${NNODES} node(s) x ${GPUS_PER_NODE} GPU(s), head ${MASTER_ADDR}:${MASTER_PORT}, run dir ${RUN_DIR}"

# shellcheck disable=SC2329  # invoked by the trap below
request_requeue() {
    echo "requeue" > "$RUN_DIR/STOP"
    echo "[distgan sbatch] USR1: asked distgan to checkpoint and requeue"
}
trap request_requeue USR1

# shellcheck disable=SC2086  # CONTAINER holds zero or more srun options
srun $CONTAINER --nodes="$NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 bash slurm/launch_node.sh &
step_pid=$!
while :; do
    status=0
    wait "$step_pid" || status=$?
    # A trapped signal interrupts `wait` (status > 128) while the step keeps running.
    kill -0 "$step_pid" 2>/dev/null || break
done

if [ -f "$RUN_DIR/REQUEUE_REQUESTED" ]; then
    echo "[distgan sbatch] distgan checkpointed and requeued the job: $(cat "$RUN_DIR/REQUEUE_REQUESTED")"
    exit 0
fi
exit "$status"
