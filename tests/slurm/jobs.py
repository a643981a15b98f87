"""Starting the sbatch scripts as SLURM would, on this one machine.

``submit`` starts a script the way ``sbatch --export=ALL,NAME=value`` starts it on the head node:
``bash SCRIPT`` with the SLURM variables its ``#SBATCH`` header asks for (``nodes`` overrides the
header, as ``sbatch --nodes`` does). The ``srun`` and ``scontrol`` stand-ins (slurm_bin/) are
always first on PATH; with ``record_launches`` the ``accelerate`` and ``torchrun`` stand-ins
(launcher_bin/) come next and only record what each node would launch, otherwise the real
launchers start real training processes, every "node" on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.train.helpers import REPO_ROOT, kill_tree

HERE = Path(__file__).resolve().parent
SLURM_BIN = HERE / "slurm_bin"  # srun and scontrol stand-ins
LAUNCHER_BIN = HERE / "launcher_bin"  # accelerate and torchrun stand-ins that record their command
SLURM = REPO_ROOT / "slurm"
ONE_NODE, MULTI_NODE = SLURM / "train_1node.sbatch", SLURM / "train_multinode.sbatch"
GPUS = 2
SCRIPT_VARIABLES = ("CONFIG", "DATA", "RUN_DIR", "LAUNCH_CONFIG", "LAUNCHER", "GPUS_PER_NODE", "ACTIVATE",
                    "CONTAINER", "OVERRIDES", "PROJECT_DIR", "NNODES", "STANDIN_LAUNCH")


def sbatch_header(script: Path) -> dict[str, str]:
    options = {}
    for line in script.read_text().splitlines():
        if match := re.match(r"#SBATCH --([\w-]+)(?:=(\S+))?", line):
            options[match.group(1)] = match.group(2) or ""
    return options


def node_list(nodes: int) -> tuple[str, list[str]]:
    """A SLURM_JOB_NODELIST and the hosts it names."""
    if nodes == 1:
        return "node07", ["node07"]
    return f"node[01-{nodes:02d}]", [f"node{i:02d}" for i in range(1, nodes + 1)]


def submit(script: Path, log: Path, job_id: int, nodes: int | None = None, record_launches: bool = True,
           node_list_text: str | None = None, **variables: str) -> subprocess.Popen:
    """Start ``script`` as sbatch would, with ``variables`` exported (sbatch --export=ALL,...)."""
    nodes = nodes or int(sbatch_header(script)["nodes"])
    log.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLURM_", "MASTER_", "PET_")) and key not in SCRIPT_VARIABLES}
    path = [str(SLURM_BIN), *([str(LAUNCHER_BIN)] if record_launches else []), env["PATH"]]
    env.update(PATH=os.pathsep.join(path), STANDIN_LOG=str(log), SLURM_JOB_ID=str(job_id),
               SLURM_JOB_NAME=sbatch_header(script)["job-name"], SLURM_NNODES=str(nodes),
               SLURM_JOB_NODELIST=node_list_text or node_list(nodes)[0], SLURM_SUBMIT_DIR=str(REPO_ROOT),
               SLURM_GPUS_ON_NODE=str(GPUS), **variables)
    return subprocess.Popen(["bash", str(script)], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(job: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """The job's status and output; a job still running after ``timeout`` is killed with every
    process it started, and the test fails."""
    try:
        output, _ = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(job.pid)
        output, _ = job.communicate()
        raise AssertionError(f"the batch script still runs after {timeout} s\n{output}") from None
    return job.returncode, output


def node_task(log: Path, node: int) -> int:
    """The pid of the srun stand-in's task for ``node`` (the leader of that node's processes)."""
    return int((log / f"node-{node}.pgid").read_text())
