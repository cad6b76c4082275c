"""What several core test files share: running Python in a child process on the same minidl."""
import os
import subprocess
import sys
from pathlib import Path

from minidl import _core

# Children import the same minidl as this process (an in-place build or an installed one), never a
# source tree that happens to be the working directory.
PACKAGE_PARENT = str(Path(_core.__file__).resolve().parents[2])


def run_python(code, **env):
    """stdout (stripped) of `python -c code` with `env` added to this process's environment."""
    environment = {**os.environ, **env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            check=True, timeout=60, cwd=PACKAGE_PARENT)
    return result.stdout.strip()
