"""glibc malloc tuning: never at import (a process-wide change), on when the `minidl` command or the user
asks, off when the user says so."""
import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from minidl import allocator

# Children run where the tested package is importable (the installed copy, or the source tree when built
# in place), never a source tree's unbuilt copy from the current directory.
PACKAGE_PARENT = str(Path(allocator.__file__).resolve().parents[1])


def test_import_changes_no_process_wide_state():
    code = ("import minidl, minidl.nn, minidl.optim, minidl.init, minidl.diagnostics, minidl.experiments\n"
            "from minidl.allocator import malloc_tuned\nassert not malloc_tuned()\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin"}, cwd=PACKAGE_PARENT)


def test_user_opt_out_and_own_settings_are_respected(monkeypatch):
    monkeypatch.setenv("MINIDL_MALLOC_TUNING", "0")
    assert allocator.tune_malloc() is False
    monkeypatch.delenv("MINIDL_MALLOC_TUNING")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert allocator.tune_malloc() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or "musl" in (ctypes.util.find_library("c") or ""),
                    reason="glibc only")
def test_applied_on_glibc_and_by_the_minidl_command(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("MALLOC_") or key == "MINIDL_MALLOC_TUNING":
            monkeypatch.delenv(key)
    assert allocator.tune_malloc() is True and allocator.malloc_tuned()
    code = ("from minidl.cli import main\nfrom minidl.allocator import malloc_tuned\n"
            "assert not malloc_tuned()\nmain(['bench'])\nassert malloc_tuned()\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin"}, cwd=PACKAGE_PARENT,
                   stdout=subprocess.DEVNULL)
