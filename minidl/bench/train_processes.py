"""Parent side of `minidl bench train`: start a contender's worker process and talk to it (JSON lines)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = Path(__file__).with_name("train_worker.py")
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])    # the directory holding minidl/


def thread_environment(threads: int) -> dict:
    """This process's environment with every thread pool a contender may use set to ``threads``,
    and the minidl being benchmarked importable (the same one as in this process)."""
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return env


class ContenderProcess:
    """One contender, one thread count, one batch size: a worker process that runs steps on request."""

    def __init__(self, contender: str, threads: int, batch: int, seed: int = 0):
        self.contender = contender
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            [sys.executable, str(WORKER), contender, str(threads), str(batch), str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=thread_environment(threads), cwd=PACKAGE_PARENT)

    def wait_ready(self) -> None:
        self.reply()

    def request(self, cmd: str, **fields) -> dict:
        self.send(cmd, **fields)
        return self.reply()

    def send(self, cmd: str, **fields) -> None:
        """Start a command without waiting for its reply (``reply()`` collects it)."""
        self._process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self._process.stdin.flush()

    def reply(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"the {self.contender} worker exited (code {self._process.wait()}):\n"
                               f"{self._stderr.read()[-3000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the {self.contender} worker failed: {reply['error']}")
        return reply

    def close(self, kill: bool = False) -> None:
        """Ask the worker to quit and wait for it (``kill``: stop it at once, as after an interruption)."""
        if kill and self._process.poll() is None:
            self._process.kill()
        if self._process.poll() is None:
            try:
                self._process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self._process.stdin.close()
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._stderr.close()
