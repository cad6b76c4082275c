"""tools/ab_kernels.py, the in-process A/B of two builds' GEMM calls: it loads another build's extension beside
this one and prints a line per call kind; a build compared with itself gives ratios near 1."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minidl._core import _kernels

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "ab_kernels.py"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="tools/ is in the source tree only (not installed)")


def test_a_build_against_itself():
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--size", "64", "--rounds", "3",
                             "--calls", "2", "--threads", "1"], capture_output=True, text=True, timeout=120,
                            cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == 4, result.stdout
    for line in lines:
        ratio = float(re.search(r"ratio (\d+\.\d+)", line).group(1))
        assert 0.2 < ratio < 5.0, line


def test_a_file_that_is_no_extension_is_refused(tmp_path):
    bogus = tmp_path / "_kernels.so"
    bogus.write_text("not an extension")
    result = subprocess.run([sys.executable, str(SCRIPT), str(bogus)], capture_output=True, text=True, timeout=60,
                            cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 1
    assert f"cannot load {bogus}" in result.stderr and "Traceback" not in result.stderr
