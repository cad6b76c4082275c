"""What several core test files share: the thread counts to test, and running Python in a child process on
the same minidl."""
import os
import subprocess
import sys
from pathlib import Path

from minidl import _core

# Children import the same minidl as this process (an in-place build or an installed one), never a
# source tree that happens to be the working directory.
PACKAGE_PARENT = str(Path(_core.__file__).resolve().parents[2])

# The team sizes every threaded kernel test runs with: 1 and 2 by default (CI's machines), more on a bigger
# machine, e.g. MINIDL_TEST_THREADS=1,2,3,16 (an odd team splits work unevenly; 16 on a 16-core server).
_test_threads = os.environ.get("MINIDL_TEST_THREADS", "1,2")
try:
    TEST_THREADS = tuple(int(n) for n in _test_threads.split(","))
except ValueError:
    TEST_THREADS = ()
if not TEST_THREADS or min(TEST_THREADS) < 1:
    raise ValueError(f"MINIDL_TEST_THREADS must be thread counts >= 1 separated by commas, got {_test_threads!r}")


def run_python(code, **env):
    """stdout (stripped) of `python -c code` with `env` added to this process's environment."""
    environment = {**os.environ, **env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            check=True, timeout=60, cwd=PACKAGE_PARENT)
    return result.stdout.strip()
