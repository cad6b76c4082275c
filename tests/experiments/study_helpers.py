"""A tiny study shared by the reliability and Dask tests, and helpers to watch it run in a subprocess."""
import json
import subprocess
import sys
import time
from pathlib import Path

import minidl

# Children run beside the tested package (the installed copy, or a source tree built in place), never
# in a source checkout whose unbuilt copy would shadow it from the current directory.
PACKAGE_PARENT = str(Path(minidl.__file__).resolve().parents[1])

# A small serial study: 4 runs of 300 updates, a checkpoint every 40 updates (~1-2 s per run).
TINY = ["reproduce", "--quick", "--dataset", "shapeset", "--skip-at-init", "--activations", "tanh",
        "--schemes", "standard,xavier_uniform", "--seeds", "0,1", "--updates", "300", "--width", "48",
        "--checkpoint-every", "40", "--no-progress"]


def results_of(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def start_study(args: list) -> subprocess.Popen:
    """`python -m minidl <args>` in a subprocess (text pipes)."""
    return subprocess.Popen([sys.executable, "-m", "minidl"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=PACKAGE_PARENT)


def wait_for_checkpoint(process: subprocess.Popen, out: Path, runs_done: int = 0, timeout: float = 120.0) -> Path:
    """The first run checkpoint to appear in out/checkpoints/ while `process` runs, once results.json holds
    at least `runs_done` finished runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted((out / "checkpoints").glob("*.npz"))
        if found and (runs_done == 0 or len(_runs(out)) >= runs_done):
            return found[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.kill()
    raise AssertionError("no checkpoint appeared")


def _runs(out: Path) -> list:
    try:
        return results_of(out)["training"]["runs"]
    except (FileNotFoundError, json.JSONDecodeError):
        return []
