"""What distgan does for a cluster scheduler when a run stops early: ask SLURM to requeue it.

Kept apart from the trainer, which only reports that it stopped on request after a checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL: "stopped with a checkpoint, run me again"
REQUEUE_MARKER = "REQUEUE_REQUESTED"


def slurm_job_id() -> str | None:
    """The job to requeue (for an array task, SLURM_JOB_ID is that task's own id)."""
    return os.environ.get("SLURM_JOB_ID") or None


def request_requeue(run_dir: Path, step: int, reason: str) -> bool:
    """Rank 0: under SLURM, requeue the job; then record the request in the run directory.

    The marker file lets the sbatch script tell a requeue from a failure even when a launcher
    (torchrun, accelerate launch) turns the workers' exit status into its own. It is written only
    when nothing failed: had ``scontrol requeue`` failed, the job would end with status 0 and
    never come back, a stopped run that looks finished. Outside SLURM it is written for whatever
    wrapper restarts the run.
    """
    job_id = slurm_job_id()
    if job_id is None:
        print("[distgan] not under SLURM (no SLURM_JOB_ID): nothing to requeue")
    else:
        print(f"[distgan] running: scontrol requeue {job_id}", flush=True)
        try:
            done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            print(f"[distgan] scontrol requeue {job_id} failed: {err}; the job will not come back by itself")
            return False
        if done.returncode != 0:
            print(f"[distgan] scontrol requeue {job_id} failed ({done.returncode}): {done.stderr.strip()}; "
                  "the job will not come back by itself")
            return False
        print(f"[distgan] requeued SLURM job {job_id}")
    marker = Path(run_dir) / REQUEUE_MARKER
    marker.write_text(json.dumps({"step": step, "reason": reason, "job_id": job_id, "time": time.time()}) + "\n")
    return job_id is not None
