"""Count what the fuzzer (test_fuzz_autograd.py) finds in whatever minidl is importable, e.g. an old
checkout: ``PYTHONPATH=/tmp/old python tests/framework/fuzz_count.py 250``. Ops whose methods that code
lacks (AttributeError) are dropped. Every example is run to the end and failures are counted by kind,
not raised; the stream is derandomized (fixed for this script, not the one the CI test draws)."""
import collections
import pathlib
import sys

import numpy as np
from hypothesis import given, settings

import minidl

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import test_fuzz_autograd as fz  # noqa: E402


def runs_here(index: int) -> bool:
    """False if the op at ``index`` calls a method this minidl lacks."""
    for shapes in (((2, 3), (2, 3)), ((3,), (3,)), ((2, 1, 3), (3,))):
        for param in range(4):
            program = fz.Program(shapes, np.float64, ((index, 0, 1, param),), 7)
            try:
                program(fz.Run(False), [minidl.Tensor(a, requires_grad=True) for a in program.leaves()])
            except AttributeError:
                return False
            except Exception:       # noqa: BLE001 - other errors are findings, counted below
                pass
    return True


def main(max_examples: int) -> None:
    print("minidl from", minidl.__file__)
    kept = [op for i, op in enumerate(fz.OPS) if runs_here(i)]
    print("ops dropped (missing in this code):", [op.name for op in fz.OPS if op not in kept])
    fz.OPS[:] = kept
    kinds, first = collections.Counter(), {}

    def run(program):
        kinds["examples"] += 1
        try:
            kinds["passed" if fz.check_program(program) else "rejected (values beyond 1e4)"] += 1
            return
        except AssertionError as exc:
            msg = str(exc)
            kind = ("wrong gradient value" if "tolerance" in msg else
                    ".grad not an ndarray" if ".grad is" in msg else "other assertion")
        except Exception as exc:    # noqa: BLE001
            msg, kind = str(exc), f"exception {type(exc).__name__}"
        kinds[kind] += 1
        first.setdefault(kind, (kinds["examples"], program, msg[:300]))

    settings(fz.SETTINGS, max_examples=max_examples)(given(fz.programs())(run))()
    print(dict(kinds))
    for kind, (index, program, msg) in first.items():
        print(f"--- first '{kind}': example #{index}: {program}\n    {msg}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else fz.SETTINGS.max_examples)
