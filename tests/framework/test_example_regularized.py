"""examples/train_mlp_regularized.py runs end to end at a tiny size on the built-in Shapeset-3x2."""
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_mlp_regularized.py"


def test_example_trains_and_prints_the_test_accuracy():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--dataset", "shapeset", "--train-size", "600",
                             "--test-size", "200", "--epochs", "2", "--hidden", "32"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Shapeset-3x2: 600 training and 200 test images" in result.stdout
    assert "BatchNorm1d(32" in result.stdout and "Dropout(p=0.2)" in result.stdout
    accuracy = float(re.search(r"^test accuracy: ([\d.]+)%$", result.stdout, re.M).group(1))
    assert 0.0 <= accuracy <= 100.0


def test_example_refuses_a_non_positive_size():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--epochs", "0"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "must be positive" in result.stderr
