"""The `uninterrupted` fixture: the tiny study of study_helpers, run serially start to end (once per session)."""
import pytest

from study_helpers import TINY, results_of


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory) -> dict:
    """results.json of TINY run serially, start to end."""
    from minidl.cli import main

    out = tmp_path_factory.mktemp("uninterrupted") / "study"
    assert main(TINY + ["--out", str(out)]) == 0
    return results_of(out)
