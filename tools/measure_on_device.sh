#!/usr/bin/env bash
# Measure minidl on a second machine in one go (the 16-core AVX-512 server the speed issues ask for): build it
# there, check the build, run the compiled core's tests at that machine's thread counts, then the benchmarks,
# each stage under its own time limit so that one slow stage still leaves the others' results.
#
#   bash tools/measure_on_device.sh                      # from the repository root; results in $OUT
#   QUICK=1 PYTHON=.venv/bin/python bash tools/measure_on_device.sh   # a dry run on a small machine
#   SMOKE=1 SKIP_BUILD=1 bash tools/measure_on_device.sh # every stage in seconds, on the installed minidl
#                                                        # (tests/tools/test_measure_on_device.py)
#
# The machine needs no package index: minidl is built with `pip install --no-build-isolation --no-deps`
# against the NumPy, Cython and setuptools already there (PyTorch and JAX, when there, are contenders).
# Results, at most 8 files (what the device tool brings back): env.txt (CPU, versions, the build check),
# tests.txt, gemm.txt, sigmoid.txt, train.txt, profile.txt, and log.txt (everything, in order).
# Time: the stages' limits add up to 580 s (the device tool allows 600 per command); most important first.
set -uo pipefail

OUT=${OUT:-/tmp/minidl-device-out}
PYTHON=${PYTHON:-python3}
case $PYTHON in /*) ;; */*) PYTHON=$PWD/$PYTHON ;; *) PYTHON=$(command -v "$PYTHON") ;; esac  # runs start elsewhere
CORES=$(nproc)
REPO=$(pwd)
TESTS=$REPO/tests/core BENCH_ARGS=() TRAIN_ARGS=() PROFILE_BATCHES=10,256
if [ "${SMOKE:-0}" = 1 ]; then
  TEST_THREADS=1,2 GEMM_THREADS=1 SIGMOID_THREADS=1 TRAIN_THREADS=1 TRAIN_ROUNDS=1 PROFILE_THREADS=1
  TESTS=$REPO/tests/core/test_axpby.py BENCH_ARGS=(--rounds 1 --pause 0) PROFILE_BATCHES=10
  TRAIN_ARGS=(--batches 10 --block-seconds 0.01 --warmup 1 --pause 0)
elif [ "${QUICK:-0}" = 1 ]; then
  TEST_THREADS=1,2,3 GEMM_THREADS=1,2 SIGMOID_THREADS=1,2 TRAIN_THREADS=2 TRAIN_ROUNDS=2 PROFILE_THREADS=2
else
  TEST_THREADS=1,2,$CORES GEMM_THREADS=1,2,4,8,$CORES SIGMOID_THREADS=1,2,$CORES
  TRAIN_THREADS=2,4,8,$CORES TRAIN_ROUNDS=3 PROFILE_THREADS=$CORES
fi
SITE=$(mktemp -d /tmp/minidl-site.XXXXXX)   # minidl installed here, apart from the source tree
RUN_DIR=$(mktemp -d /tmp/minidl-run.XXXXXX) # the working directory of every run: no source tree to shadow it
trap 'rm -rf "$SITE" "$RUN_DIR"' EXIT
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES=
[ "${SKIP_BUILD:-0}" = 1 ] || export PYTHONPATH=$SITE
exec > >(tee -a "$OUT/log.txt") 2>&1

# stage NAME SECONDS OUTFILE COMMAND...: run COMMAND from $RUN_DIR under a time limit, its output into OUTFILE too
stage() {
  local name=$1 limit=$2 file=$3
  shift 3
  echo "=== $(date -u +%T) $name (limit ${limit} s)"
  local start=$SECONDS
  (cd "$RUN_DIR" && timeout --signal=INT --kill-after=10 "$limit" "$@") 2>&1 | tee -a "$OUT/$file"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - start)) s$([ "$rc" = 124 ] && echo ' (time limit)')"
  return "$rc"
}

{
  echo "date: $(date -u +%FT%TZ); cores: $CORES; commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
  lscpu 2>/dev/null | grep -E '^(Model name|Socket|Core|Thread|NUMA node\(s\)|L1d|L2|L3|Flags)' | cut -c1-400
  "$PYTHON" -c 'import sys, numpy; print("python", sys.version.split()[0], "numpy", numpy.__version__)'
  echo "compiler: $( (cc --version || gcc --version) 2>/dev/null | head -1)"
  numpy_blas=$("$PYTHON" -c 'import numpy; c = numpy.show_config(mode="dicts"); print(c["Build Dependencies"]["blas"])' 2>/dev/null)
  echo "numpy blas: ${numpy_blas:-unknown}"
  for contender in torch jax; do
    "$PYTHON" -c "import $contender; print('$contender', $contender.__version__)" 2>/dev/null || echo "$contender: absent"
  done
} | tee "$OUT/env.txt"

if [ "${SKIP_BUILD:-0}" = 1 ]; then
  echo "=== build: skipped (SKIP_BUILD=1), the minidl that $PYTHON imports is measured" | tee -a "$OUT/env.txt"
else
  stage build 150 env.txt "$PYTHON" -m pip install -q --no-build-isolation --no-deps --no-cache-dir --target "$SITE" "$REPO" ||
    { echo "the build failed: nothing to measure"; exit 1; }
fi
stage check_build 30 env.txt "$PYTHON" -c 'import minidl, runpy; print("minidl from", minidl.__file__); runpy.run_module("minidl._core.check_build", run_name="__main__")'
failed=0
stage train 190 train.txt "$PYTHON" -m minidl bench train --threads "$TRAIN_THREADS" --rounds "$TRAIN_ROUNDS" \
  ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} || failed=$((failed + 1))
stage gemm 75 gemm.txt "$PYTHON" -m minidl bench gemm --quick --threads "$GEMM_THREADS" \
  ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} || failed=$((failed + 1))
stage tests 75 tests.txt env MINIDL_TEST_THREADS="$TEST_THREADS" \
  "$PYTHON" -m pytest -q -p no:cacheprovider --rootdir "$REPO" "$TESTS" || failed=$((failed + 1))
stage sigmoid 25 sigmoid.txt "$PYTHON" -m minidl bench sigmoid --quick --threads "$SIGMOID_THREADS" \
  ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} || failed=$((failed + 1))
stage profile 35 profile.txt "$PYTHON" -m minidl bench train --profile --threads "$PROFILE_THREADS" \
  --batches "$PROFILE_BATCHES" || failed=$((failed + 1))
echo "=== $(date -u +%T) done in $SECONDS s, $failed stage(s) failed; results in $OUT"
exit $((failed > 0))
