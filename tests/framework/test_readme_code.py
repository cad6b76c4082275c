"""README's Python blocks run as written, in order (the Training block once said `optimizer` where the
API screen had named it `opt`: NameError). Shortened only where a block trains for minutes."""
import re
from pathlib import Path

import pytest

from minidl.data import DatasetNotFoundError, find_dataset

README = Path(__file__).resolve().parents[2] / "README.md"
SHORTER = {"trainer.fit(epochs=10)": "trainer.fit(updates=3)"}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_python_blocks_of_the_readme_run_in_order(tmp_path, monkeypatch):
    try:
        find_dataset("fashion-mnist", "train")
    except DatasetNotFoundError as error:
        pytest.skip(f"the Training block reads Fashion-MNIST: {error}".splitlines()[0])
    monkeypatch.chdir(tmp_path)
    blocks = [block for block in python_blocks() if "dask_jobqueue" not in block]     # needs a Slurm cluster
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:
        for long, short in SHORTER.items():
            block = block.replace(long, short)
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "model.npz").exists() and (tmp_path / "runs" / "x" / "model.npz").exists()
    assert namespace["trainer"].step == 3
