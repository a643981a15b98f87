"""distgan chooses OpenMP's passive wait policy before torch loads, unless the user chose one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from distgan.threads import SET_BY_DISTGAN, settle_threads, torch_default_env
from tests.conftest import REPO_ROOT

# After distgan's entry point ran, in the same process: the policy, and whether torch was loaded
# before it was set (libgomp reads the variable once, when torch loads it).
PROBE = ("import os, sys\n"
         "from distgan import cli\n"
         "cli.main(['--version'])\n"
         "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n")


def test_passive_is_set_where_nothing_was_chosen() -> None:
    environ = {"PATH": "/bin", "OMP_NUM_THREADS": "2"}
    assert settle_threads(environ) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert environ == {"PATH": "/bin", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
                       SET_BY_DISTGAN: "OMP_WAIT_POLICY"}
    # The thread count is the user's or torch's; the benchmark's baseline drops every choice.
    assert torch_default_env(environ) == {"PATH": "/bin"}


@pytest.mark.parametrize("chosen", [{"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}])
def test_a_users_wait_policy_is_left_alone(chosen: dict[str, str]) -> None:
    environ = dict(chosen)
    assert settle_threads(environ) == {} and environ == chosen


@pytest.mark.parametrize(("user", "seen"), [({}, "PASSIVE False"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE False")])
def test_the_command_sets_it_before_torch_loads(user: dict[str, str], seen: str) -> None:
    env = {**torch_default_env(), **user}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == seen
