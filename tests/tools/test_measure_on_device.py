"""tools/measure_on_device.sh, the one call a lent machine gets: every stage runs and leaves its table.

A device session has 15 minutes in all, so a stage broken by a renamed option must fail here, not there.
SMOKE=1 runs each stage with the smallest settings on the installed minidl (SKIP_BUILD=1: the build stage
is `pip install`, which CI has just run)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "measure_on_device.sh"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="tools/ is in the source tree only (not installed)")
STAGES = {"check_build": "env.txt", "train": "train.txt", "gemm": "gemm.txt", "tests": "tests.txt",
          "sigmoid": "sigmoid.txt", "profile": "profile.txt"}


def run_script(out, **env):
    environment = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "SMOKE": "1", "SKIP_BUILD": "1", **env}
    return subprocess.run(["bash", str(SCRIPT)], cwd=SCRIPT.parents[1], env=environment, capture_output=True,
                          text=True, timeout=240)


def test_every_stage_runs_and_writes_its_table(tmp_path):
    result = run_script(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = (tmp_path / "log.txt").read_text()
    for stage, file in STAGES.items():
        assert f"=== {stage}: exit 0" in log, stage
        assert (tmp_path / file).stat().st_size > 0, file
    assert "0 stage(s) failed" in log
    env = (tmp_path / "env.txt").read_text()
    assert "minidl._core: OpenMP" in env and "python " in env and "compiler: " in env
    assert "targets at 1e6 float32" in (tmp_path / "sigmoid.txt").read_text()
    assert "target set" in (tmp_path / "gemm.txt").read_text()
    assert "passed" in (tmp_path / "tests.txt").read_text()
    assert "minidl step, batch 10" in (tmp_path / "profile.txt").read_text()
    assert "1 thread(s), batch 10" in (tmp_path / "train.txt").read_text()
    assert len(list(tmp_path.iterdir())) <= 8              # what the device tool brings back


def test_a_failing_stage_is_counted_and_the_others_still_run(tmp_path):
    # a Python whose `minidl bench gemm` fails (exit 3): that stage is counted, the ones after it still run
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *'-m minidl bench gemm'*) exit 3;; esac\nexec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    result = run_script(tmp_path / "out", PYTHON=str(fake))
    log = (tmp_path / "out" / "log.txt").read_text()
    assert result.returncode == 1
    assert "=== gemm: exit 3" in log and "=== sigmoid: exit 0" in log and "1 stage(s) failed" in log
