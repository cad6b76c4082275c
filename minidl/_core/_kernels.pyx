# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Python-visible wrappers of the compiled kernels: validate, pick the dtype, release the GIL, call C.

All checks happen here, before any `nogil` code; the C side (kernels.h) trusts its arguments.
"""
import contextvars
import numbers
import os
import warnings

import numpy as np

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New
from libc.math cimport M_SQRT2, erfc
from libc.stdint cimport SIZE_MAX

cnp.import_array()

cdef extern from "kernels.h" nogil:
    ctypedef Py_ssize_t mdl_index
    ctypedef struct mdl_cache_sizes:
        long l1d, l2, l3
    ctypedef struct mdl_blocking:
        mdl_index mc, kc, nc, skinny_m, skinny_kc, skinny_mc, skinny_kc_m
    mdl_cache_sizes mdl_cache_sizes_detected()
    mdl_cache_sizes mdl_cache_sizes_in_use()
    void mdl_override_cache_sizes(long l1d, long l2, long l3)
    mdl_blocking mdl_derive_blocking(mdl_cache_sizes caches, int threads, int mr, int nr, int item)
    ctypedef enum mdl_work:
        MDL_WORK_SIGMOID_FWD, MDL_WORK_SIGMOID_BWD, MDL_WORK_AXPBY, MDL_WORK_GEMM, MDL_WORK_KINDS
    ctypedef struct mdl_work_rates:
        double per_s[MDL_WORK_KINDS]
    ctypedef struct mdl_thread_thresholds:
        double min_per_thread[MDL_WORK_KINDS]
    mdl_thread_thresholds mdl_derive_thresholds(double fork_join_s, mdl_work_rates rates)
    mdl_thread_thresholds mdl_thresholds_for(int team, int item)
    double mdl_fork_join_seconds(int team)
    void mdl_set_test_fork_join(double seconds)
    mdl_work_rates mdl_work_rates_measured(int item)
    long mdl_threads_with_buffers(int ever)
    void mdl_init()
    int mdl_cpu_has_avx2_fma()
    const char *mdl_kernel_build_name(int i)
    int mdl_kernel_build_compiled(int i)
    int mdl_kernel_build_cpu_supports(int i)
    int mdl_select_kernels(const char *name)
    const char *mdl_kernel_name()
    void mdl_kernel_tile(int item, int *mr, int *nr)
    int mdl_openmp_enabled()
    void mdl_set_num_threads(int n)
    int mdl_get_num_threads()
    int mdl_threads_for_call()
    void mdl_note_team(int team, double start_delay, double finish_spread, double duration, double master_cpu)
    void mdl_contention_window(double *lost, double *saved)
    long mdl_backoff_count()
    int mdl_take_largest_team()
    void mdl_reset_contention_state()
    void mdl_set_test_clock(double seconds)
    int mdl_gemm_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index rsa, mdl_index csa,
                     const float *B, mdl_index rsb, mdl_index csb, float *C, mdl_index ldc, float alpha,
                     float beta, const float *bias)
    int mdl_gemm_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index rsa, mdl_index csa,
                     const double *B, mdl_index rsb, mdl_index csb, double *C, mdl_index ldc, double alpha,
                     double beta, const double *bias)
    ctypedef struct mdl_weight_update:
        const void *u
        const void *v
        mdl_index rows, ldu, ldv
        double alpha, beta
        int fuse
    int mdl_gemm_after_update_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index lda,
                                  float *W, mdl_index ldw, float *C, mdl_index ldc, const float *bias,
                                  const mdl_weight_update *update)
    int mdl_gemm_after_update_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index lda,
                                  double *W, mdl_index ldw, double *C, mdl_index ldc, const double *bias,
                                  const mdl_weight_update *update)
    void mdl_sigmoid_fwd_f32(const float *x, float *y, mdl_index n)
    void mdl_sigmoid_fwd_f64(const double *x, double *y, mdl_index n)
    void mdl_sigmoid_bwd_f32(const float *y, const float *gy, float *gx, mdl_index n)
    void mdl_sigmoid_bwd_f64(const double *y, const double *gy, double *gx, mdl_index n)
    void mdl_axpby_f32(float alpha, const float *x, float beta, float *y, mdl_index n)
    void mdl_axpby_f64(double alpha, const double *x, double beta, double *y, mdl_index n)


# ------------------------------------------------------------------ kernel selection and threads
def cpu_has_avx2_fma():
    """True if this CPU (and OS) support AVX2 and FMA."""
    return bool(mdl_cpu_has_avx2_fma())


def _kernel_builds():
    """(name, compiled, CPU supports it) of every kernel build, fastest first."""
    builds, i = [], 0
    while mdl_kernel_build_name(i) != NULL:
        builds.append((mdl_kernel_build_name(i).decode(), bool(mdl_kernel_build_compiled(i)),
                       bool(mdl_kernel_build_cpu_supports(i))))
        i += 1
    return tuple(builds)


KERNEL_BUILDS = tuple(name for name, _, _ in _kernel_builds())


def compiled_kernels():
    """Kernel builds compiled into this binary, fastest first (setup.py leaves out what it cannot build)."""
    return tuple(name for name, compiled, _ in _kernel_builds() if compiled)


def cpu_supported_kernels():
    """Kernel builds this CPU and OS can run, fastest first, whether compiled or not."""
    return tuple(name for name, _, supported in _kernel_builds() if supported)


def available_kernels():
    """Kernel builds usable here (compiled and supported), fastest first: e.g. ('avx512', 'avx2', 'generic')."""
    return tuple(name for name, compiled, supported in _kernel_builds() if compiled and supported)


def kernel_name():
    """The kernel build in use: one of KERNEL_BUILDS, e.g. 'avx512', 'avx2' (intrinsics) or 'generic' (C)."""
    return mdl_kernel_name().decode()


def use_kernels(name):
    """Select a kernel build by name (see available_kernels()); ValueError if it is not available here."""
    if name not in KERNEL_BUILDS or mdl_select_kernels(name.encode()) != 0:
        raise ValueError(f"kernel build {name!r} is not available here; available: {available_kernels()}")


def openmp_enabled():
    """True if the core was compiled with OpenMP (otherwise everything runs on one thread)."""
    return bool(mdl_openmp_enabled())


MAX_THREADS = 4096          # csrc/kernels.h: MDL_MAX_THREADS


def set_num_threads(n):
    """Use `n` threads (1 <= n <= MAX_THREADS) in every kernel.

    Without OpenMP, and in a fork()ed child process (GCC's OpenMP runtime is not fork-safe), the
    kernels run on the calling thread only.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"set_num_threads expects 1 <= n <= {MAX_THREADS}, got {n}")
    mdl_set_num_threads(<int>n)


def get_num_threads():
    """Threads the kernels use: set_num_threads, else OMP_NUM_THREADS, else the cores we may run on."""
    return mdl_get_num_threads()


def effective_num_threads():
    """Threads the next kernel call will use: get_num_threads(), or 1 while backing off.

    The kernels back off to one thread for a while when other processes keep every core busy; the
    policy and its numbers are stated in three sentences at the top of csrc/dispatch.c.
    """
    return mdl_threads_for_call()


def contention_backoffs():
    """How many times, since import, a late or preempted worker made the kernels back off to one thread."""
    return mdl_backoff_count()


# ------------------------------------------------------------------ cache blocking
def cache_sizes():
    """The cache sizes the GEMM blocks for, in bytes: {'l1d', 'l2' (per core), 'l3' (shared)}, read at import
    (cpu0's caches in Linux's sysfs, else sysconf; where neither says, 32 KiB / 512 KiB / 32 MiB)."""
    cdef mdl_cache_sizes c = mdl_cache_sizes_in_use()
    return {"l1d": c.l1d, "l2": c.l2, "l3": c.l3}


def gemm_blocking(dtype="float32", threads=None):
    """The blocking the active kernel build uses for `dtype` on this machine with `threads` threads (default:
    get_num_threads()): {'mr', 'nr' (its micro-tile), 'mc', 'kc', 'nc', 'skinny_m', 'skinny_kc', 'skinny_mc',
    'skinny_kc_m'}."""
    cdef int item = np.dtype(dtype).itemsize, mr = 0, nr = 0
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"gemm_blocking: dtype must be float32 or float64, got {np.dtype(dtype)}")
    mdl_kernel_tile(item, &mr, &nr)
    sizes = cache_sizes()
    blocking = derive_blocking(sizes["l1d"], sizes["l2"], sizes["l3"], _team(threads, "gemm_blocking"), mr, nr,
                               item)
    return {"mr": mr, "nr": nr, **blocking}


def derive_blocking(l1d, l2, l3, threads, mr, nr, itemsize):
    """The GEMM block sizes the BLIS rules give for these cache sizes (bytes), thread count, micro-tile
    MR x NR and element size: {'mc', 'kc', 'nc'} for the packed path, {'skinny_kc', 'skinny_mc'} for products of
    at most 'skinny_kc_m' rows that read B in place (of at most 'skinny_m' rows: 'kc' and 'mc'); csrc/blocking.c
    states the rules."""
    for name, value, least in (("l1d", l1d, 0), ("l2", l2, 0), ("l3", l3, 0), ("threads", threads, 1),
                               ("mr", mr, 1), ("nr", nr, 1), ("itemsize", itemsize, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ValueError(f"derive_blocking: {name} must be an integer >= {least}, got {value!r}")
    cdef mdl_cache_sizes c
    c.l1d, c.l2, c.l3 = l1d, l2, l3
    cdef mdl_blocking b = mdl_derive_blocking(c, threads, mr, nr, itemsize)
    return {"mc": b.mc, "kc": b.kc, "nc": b.nc, "skinny_m": b.skinny_m, "skinny_kc": b.skinny_kc,
            "skinny_mc": b.skinny_mc, "skinny_kc_m": b.skinny_kc_m}


def _team(threads, str func):
    """``threads`` (default: get_num_threads()), checked: an integer from 1 to MAX_THREADS."""
    if threads is None:
        return mdl_get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"{func}: threads must be an integer from 1 to {MAX_THREADS}, got {threads!r}")
    return threads


# ------------------------------------------------------------------ thread thresholds
WORK_KINDS = ("sigmoid_forward", "sigmoid_backward", "axpby", "gemm")   # in mdl_work's order


def thread_thresholds(dtype="float32", threads=None):
    """When the kernels use threads, for `dtype` with `threads` threads (default: get_num_threads()):
    {'threads', 'fork_join_s' (starting and joining the team, measured at the first call that needs it; None
    where not measured: one thread, no OpenMP, a busy machine), 'rates' (one core's measured speed per kind of
    work: elements/s, the GEMM flops/s; None where not measured), 'min_per_thread' (the least work a thread
    is given: elements, the GEMM flops)}. Kinds: WORK_KINDS; csrc/blocking.c states the rule."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"thread_thresholds: dtype must be float32 or float64, got {np.dtype(dtype)}")
    cdef int item = np.dtype(dtype).itemsize
    cdef int team = _team(threads, "thread_thresholds")
    cdef mdl_work_rates rates = mdl_work_rates_measured(item)    # before a team starts (csrc/blocking.c)
    cdef double fork_join = mdl_fork_join_seconds(team)
    cdef mdl_thread_thresholds t = mdl_thresholds_for(team, item)
    return {"threads": team, "fork_join_s": fork_join if fork_join > 0 else None,
            "rates": {kind: rates.per_s[i] if rates.per_s[i] > 0 else None for i, kind in enumerate(WORK_KINDS)},
            "min_per_thread": {kind: t.min_per_thread[i] for i, kind in enumerate(WORK_KINDS)}}


def derive_thresholds(fork_join_s, rates):
    """The least work per thread (elements; the GEMM: flops) that the rule of csrc/blocking.c gives for a
    fork-join cost (s) and one core's rates {kind: per second} (a kind left out or None: unknown)."""
    cdef mdl_work_rates r
    for i, kind in enumerate(WORK_KINDS):
        r.per_s[i] = rates.get(kind) or 0.0
    cdef mdl_thread_thresholds t = mdl_derive_thresholds(fork_join_s, r)
    return {kind: t.min_per_thread[i] for i, kind in enumerate(WORK_KINDS)}


def _set_test_fork_join(seconds):
    """Test hook: every team of 2+ threads costs `seconds` to start and join (the thresholds follow from it)
    instead of the measured cost; None: measured again."""
    mdl_set_test_fork_join(-1.0 if seconds is None else seconds)


def _override_cache_sizes(l1d=0, l2=0, l3=0):
    """Test hook: block for these cache sizes (bytes) instead of the detected ones; no arguments: detected."""
    mdl_override_cache_sizes(l1d, l2, l3)


def _threads_with_buffers(ever=False):
    """Test hook: threads that hold GEMM packing buffers now (freed when a thread exits), or that ever did."""
    return mdl_threads_with_buffers(1 if ever else 0)


def _note_team(start_delay, finish_spread=None, duration=0.001, team=2, master_cpu=None):
    """Test hook: report a parallel region's thread timings (seconds), as the kernels do.

    finish_spread defaults to start_delay: a thread that starts late finishes that much later. master_cpu:
    the CPU seconds the calling thread spent on its share (None: not measured in this region).
    """
    mdl_note_team(team, start_delay, start_delay if finish_spread is None else finish_spread, duration,
                  -1.0 if master_cpu is None else master_cpu)


def _contention_window():
    """Test hook: (lost, saved), the back-off guard's decayed sums of what recent regions lost to stalls and
    saved by running on threads (seconds; see dispatch.c)."""
    cdef double lost = 0.0, saved = 0.0
    mdl_contention_window(&lost, &saved)
    return lost, saved


def _reset_contention_state():
    """Test hook: forget earlier stalls and back-offs (the next kernel may use every thread)."""
    mdl_reset_contention_state()


def _set_test_clock(seconds):
    """Test hook: the back-off guard reads its time (s) from here instead of the wall clock; None: the
    wall clock again. Parallel regions still measure their own timings with the wall clock."""
    mdl_set_test_clock(-1.0 if seconds is None else seconds)


def _take_largest_team():
    """Test hook: the most threads that ran one parallel region since the last call (0: no region ran)."""
    return mdl_take_largest_team()


# ------------------------------------------------------------------ validation helpers
cdef inline bint _is_float(cnp.ndarray arr):
    cdef int t = cnp.PyArray_TYPE(arr)
    return t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64


cdef cnp.ndarray _check_array(object x, str what, str func):
    """x must be a float32/float64 ndarray; returns it, copied if the C code cannot read it in place."""
    if isinstance(x, np.generic):
        x = np.asarray(x)  # a NumPy scalar is a 0-d array
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{func}: {what} must be a numpy.ndarray, got {type(x).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>x
    if not _is_float(arr):
        raise TypeError(f"{func}: {what} has dtype {arr.dtype}; expected float32 or float64")
    return _readable(arr)


cdef cnp.ndarray _readable(cnp.ndarray arr):
    """Copy unless aligned, native byte order and every stride a multiple of the item size."""
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(arr)
    cdef int d
    cdef bint ok = cnp.PyArray_ISALIGNED(arr) and cnp.PyArray_ISNOTSWAPPED(arr)
    for d in range(cnp.PyArray_NDIM(arr)):
        if cnp.PyArray_STRIDES(arr)[d] % item != 0:
            ok = False
    if ok:
        return arr
    return arr.astype(arr.dtype.newbyteorder("="), order="C")     # keeps a 0-d array 0-d


cdef inline bint _same_dtype(cnp.ndarray arr, object dtype):
    """arr's dtype is ``dtype`` in either byte order (the wrappers convert a byte-swapped array)."""
    return arr.dtype.newbyteorder("=") == np.dtype(dtype).newbyteorder("=")


cdef cnp.ndarray _check_out(object out, tuple shape, object dtype, str func):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{func}: out must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray o = <cnp.ndarray>out
    if out.shape != shape:
        raise ValueError(f"{func}: out has shape {out.shape}, expected {shape}")
    if not _same_dtype(o, dtype):
        raise TypeError(f"{func}: out has dtype {o.dtype}, expected {np.dtype(dtype)}")
    if not o.flags.writeable:
        raise ValueError(f"{func}: out is read-only")
    return o


cdef cnp.ndarray _check_bias(object bias, Py_ssize_t n, object dtype, str func):
    """None, or `bias` as a contiguous vector of n elements of `dtype` that the kernel can read in place."""
    if bias is None:
        return None
    cdef cnp.ndarray b = _check_array(bias, "bias", func)
    if b.ndim != 1 or b.shape[0] != n:
        raise ValueError(f"{func}: bias has shape {bias.shape}, expected ({n},): one value per column of the result")
    if not _same_dtype(b, dtype):
        raise TypeError(f"{func}: bias has dtype {bias.dtype}, expected {np.dtype(dtype)}")
    return _c_contiguous(b)


cdef inline void *_data_or_null(cnp.ndarray arr):
    return NULL if arr is None else cnp.PyArray_DATA(arr)


# ------------------------------------------------------------------ memory ranges
def byte_range(cnp.ndarray a not None):
    """(low, high): the address of the first byte of memory ``a`` can reach and one past its last (NumPy's
    ``byte_bounds``, in ~0.1 us instead of ~3: the engine logs every in-place write as one, minidl.autograd)."""
    cdef size_t data = <size_t>cnp.PyArray_DATA(a)
    cdef Py_ssize_t low = 0, high = 0, extent
    cdef int i
    if cnp.PyArray_SIZE(a) == 0:
        return data, data
    for i in range(cnp.PyArray_NDIM(a)):
        extent = (cnp.PyArray_DIMS(a)[i] - 1) * cnp.PyArray_STRIDES(a)[i]
        if extent < 0:
            low += extent
        else:
            high += extent
    return <size_t>(<Py_ssize_t>data + low), <size_t>(<Py_ssize_t>data + high + cnp.PyArray_ITEMSIZE(a))


# ------------------------------------------------------------------ matmul
def _real(value, str name, str func):
    """value (a Python or NumPy real number) as a float, or a TypeError naming it."""
    if type(value) is float:            # the common case, without the ABC check (~1 us a call)
        return value
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{func}: {name} must be a real number, got {value!r}")
    return float(value)


cdef int _flag(object value, str name, str func) except -1:
    """value, a bool (Python's or NumPy's), as 0 or 1; else a TypeError naming it. PyTorch's bool arguments
    take bools only: truthiness would read trans_a="no" or "False" as True and transpose silently."""
    if value is True or value is False or isinstance(value, np.bool_):
        return 1 if value else 0
    raise TypeError(f"{func}: {name} must be a bool, got {value!r}")


def matmul(a, b, *, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0, bias=None):
    """alpha * op(a) @ op(b) + beta * out + bias, where op(x) is x.T if its trans flag is set, else x (BLAS gemm).

    Both arrays are 2-D with the same dtype, float32 or float64; trans_a and trans_b are bools. Transposed,
    strided and Fortran-ordered inputs are read in place through their strides (the packing absorbs them).
    `out`, if given, must have shape (rows of op(a), columns of op(b)) and the same dtype; it is overwritten
    and returned.
    alpha and beta are rounded to that dtype. As in BLAS, out is not read when beta == 0 (NaN or Inf there is
    ignored), and beta != 0 needs out. The scaling happens where the micro-kernel stores its tile, so e.g.
    SGD's W <- W - lr * X^T dY is one pass over W: matmul(x, dy, trans_a=True, out=w, alpha=-lr, beta=1).
    `bias`, a vector of one value per column of the result in its dtype, is added to every row (a linear
    layer's x @ W + b) as each tile's last K block is stored, while the tile is in L1: bit for bit what adding
    it afterwards gives, without a pass of its own. An `out` that may share memory with a or b (or that the
    kernel cannot write in place: not row-major with unit column stride) is computed in a temporary and copied
    over: correct, one extra pass.
    GEMM after Goto & van de Geijn (2008): packed panels, blocking for this machine's caches, an AVX-512 or
    AVX2/FMA micro-kernel where the CPU has one; a @ b.T with few rows of a (up to 32 on AVX-512, 16 on AVX2)
    as dot products of rows instead, with nothing packed.
    """
    cdef double alpha_ = _real(alpha, "alpha", "matmul"), beta_ = _real(beta, "beta", "matmul")
    if beta_ != 0.0 and out is None:
        raise ValueError(f"matmul: beta={beta!r} needs out= (the C of alpha * op(a) @ op(b) + beta * C)")
    cdef cnp.ndarray A = _check_array(a, "a", "matmul")
    cdef cnp.ndarray B = _check_array(b, "b", "matmul")
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"matmul expects 2-D arrays, got a.shape={a.shape} and b.shape={b.shape}")
    if A.dtype != B.dtype:
        raise TypeError(f"matmul: a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    cdef bint ta = _flag(trans_a, "trans_a", "matmul"), tb = _flag(trans_b, "trans_b", "matmul")
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(A)
    cdef Py_ssize_t m, k, k2, n, rsa, csa, rsb, csb, ldc
    m, k = (A.shape[1], A.shape[0]) if ta else (A.shape[0], A.shape[1])
    k2, n = (B.shape[1], B.shape[0]) if tb else (B.shape[0], B.shape[1])
    if k != k2:
        raise ValueError(
            f"matmul: inner dimensions differ: op(a) is {m}x{k} (a.shape={a.shape}, trans_a={ta}) but "
            f"op(b) is {k2}x{n} (b.shape={b.shape}, trans_b={tb})")
    cdef cnp.ndarray Bias = _check_bias(bias, n, A.dtype, "matmul")
    rsa = cnp.PyArray_STRIDES(A)[0] // item
    csa = cnp.PyArray_STRIDES(A)[1] // item
    if ta:
        rsa, csa = csa, rsa
    rsb = cnp.PyArray_STRIDES(B)[0] // item
    csb = cnp.PyArray_STRIDES(B)[1] // item
    if tb:
        rsb, csb = csb, rsb

    cdef cnp.ndarray result, target
    if out is None:
        result = np.empty((m, n), dtype=A.dtype)
        target = result
    else:
        result = _check_out(out, (m, n), A.dtype, "matmul")
        target = result
        # The kernels write rows with unit column stride and must not read what they write.
        if (n > 1 and cnp.PyArray_STRIDES(result)[1] != item) or not cnp.PyArray_ISALIGNED(result) \
                or not cnp.PyArray_ISNOTSWAPPED(result) or cnp.PyArray_STRIDES(result)[0] % item != 0 \
                or (m > 1 and abs(cnp.PyArray_STRIDES(result)[0]) < n * item) \
                or np.may_share_memory(result, A) or np.may_share_memory(result, B):
            target = np.empty((m, n), dtype=A.dtype)
            if beta_ != 0.0:
                target[...] = result
    ldc = cnp.PyArray_STRIDES(target)[0] // item
    if Bias is not None and np.may_share_memory(Bias, target):
        Bias = Bias.copy()                  # the kernel reads bias while it writes out

    cdef int rc = 0
    cdef void *pbias = _data_or_null(Bias)
    cdef void *pa = cnp.PyArray_DATA(A)
    cdef void *pb = cnp.PyArray_DATA(B)
    cdef void *pc = cnp.PyArray_DATA(target)
    if cnp.PyArray_TYPE(A) == cnp.NPY_FLOAT32:
        with nogil:
            rc = mdl_gemm_f32(m, n, k, <const float *>pa, rsa, csa, <const float *>pb, rsb, csb,
                              <float *>pc, ldc, <float>alpha_, <float>beta_, <const float *>pbias)
    else:
        with nogil:
            rc = mdl_gemm_f64(m, n, k, <const double *>pa, rsa, csa, <const double *>pb, rsb, csb,
                              <double *>pc, ldc, alpha_, beta_, <const double *>pbias)
    if rc != 0:
        raise MemoryError(f"matmul: could not allocate packing buffers for a {m}x{k} @ {k}x{n} product")
    if target is not result:
        result[...] = target
    return result


def matmul_after_update(x, w, u, v, alpha, beta, *, fuse=True, bias=None):
    """x @ w (+ bias, as in matmul) after the update w <- beta * w + alpha * u.T @ v in place (returns the
    product, a new array).

    The update is SGD's ``W <- (1 - lr wd) W - lr X^T dY`` left pending by the optimizer; applying it
    where the next forward product reads W makes one pass over W instead of two: with few rows of x (the
    GEMM's skinny path, which reads W in place) and ``fuse`` true, each block of W's rows is updated right
    before the product reads it back from L2; otherwise the update runs first as its own GEMM (which is
    faster depends on the machine and the batch: minidl/timed_choice.py). Either way w and the product are
    bitwise what ``matmul(u, v, trans_a=True, out=w, alpha=alpha, beta=beta)`` followed by ``matmul(x, w)``
    give, on any number of threads.
    x (m x k), w (k x n), u (r x k), v (r x n): 2-D, one dtype (float32 or float64); w C-contiguous,
    writable and sharing no memory with x, u or v. A MemoryError's ``update_applied`` says whether w was
    changed (then the update must not be applied again).
    """
    cdef str func = "matmul_after_update"
    cdef double alpha_ = _real(alpha, "alpha", func), beta_ = _real(beta, "beta", func)
    cdef cnp.ndarray X = _check_array(x, "x", func)
    cdef cnp.ndarray U = _check_array(u, "u", func)
    cdef cnp.ndarray V = _check_array(v, "v", func)
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{func}: w must be a numpy.ndarray, got {type(w).__name__}")
    cdef cnp.ndarray W = <cnp.ndarray>w
    if X.ndim != 2 or W.ndim != 2 or U.ndim != 2 or V.ndim != 2:
        raise ValueError(f"{func} expects 2-D arrays, got x {x.shape}, w {w.shape}, u {u.shape}, v {v.shape}")
    if not (X.dtype == U.dtype == V.dtype and _same_dtype(W, X.dtype)):
        raise TypeError(f"{func}: x, w, u and v must have one dtype, got {x.dtype}, {w.dtype}, {u.dtype}, "
                        f"{v.dtype}")
    cdef Py_ssize_t m = X.shape[0], k = W.shape[0], n = W.shape[1], r = U.shape[0]
    if X.shape[1] != k or U.shape[1] != k or V.shape[0] != r or V.shape[1] != n:
        raise ValueError(f"{func}: shapes do not fit x (m x k) @ w (k x n) with u (r x k), v (r x n): "
                         f"x {x.shape}, w {w.shape}, u {u.shape}, v {v.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(W) or not cnp.PyArray_ISALIGNED(W) or not cnp.PyArray_ISNOTSWAPPED(W):
        raise ValueError(f"{func}: w must be an aligned C-contiguous array in native byte order")
    if not W.flags.writeable:
        raise ValueError(f"{func}: w is read-only")
    if np.may_share_memory(W, X) or np.may_share_memory(W, U) or np.may_share_memory(W, V):
        raise ValueError(f"{func}: w shares memory with x, u or v")
    cdef cnp.ndarray Bias = _check_bias(bias, n, W.dtype, func)
    if Bias is not None and np.may_share_memory(Bias, W):
        Bias = Bias.copy()                  # the update writes w while the product's epilogue reads bias
    X, U, V = _c_contiguous(X), _c_contiguous(U), _c_contiguous(V)
    cdef cnp.ndarray result = np.empty((m, n), dtype=W.dtype)
    cdef void *pbias = _data_or_null(Bias)
    cdef mdl_weight_update update
    update.u = cnp.PyArray_DATA(U)
    update.v = cnp.PyArray_DATA(V)
    update.rows = r
    update.ldu = k
    update.ldv = n
    update.alpha = alpha_
    update.beta = beta_
    update.fuse = 1 if fuse else 0
    cdef int rc = 0
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *pw = cnp.PyArray_DATA(W)
    cdef void *pc = cnp.PyArray_DATA(result)
    if cnp.PyArray_TYPE(W) == cnp.NPY_FLOAT32:
        with nogil:
            rc = mdl_gemm_after_update_f32(m, n, k, <const float *>px, k, <float *>pw, n, <float *>pc, n,
                                           <const float *>pbias, &update)
    else:
        with nogil:
            rc = mdl_gemm_after_update_f64(m, n, k, <const double *>px, k, <double *>pw, n, <double *>pc, n,
                                           <const double *>pbias, &update)
    if rc != 0:
        error = MemoryError(f"{func}: could not allocate packing buffers for a {m}x{k} @ {k}x{n} product "
                            f"({'w was changed by the update' if rc == -2 else 'w is unchanged'})")
        error.update_applied = rc == -2
        raise error
    return result


# ------------------------------------------------------------------ sigmoid
cdef inline cnp.ndarray _c_contiguous(cnp.ndarray arr):
    """arr, or a C-ordered copy of it (keeps 0-d arrays 0-d, unlike np.ascontiguousarray)."""
    if cnp.PyArray_IS_C_CONTIGUOUS(arr):
        return arr
    return arr.copy(order="C")


cdef cnp.ndarray _elementwise_target(cnp.ndarray result, tuple inputs):
    """`result` itself if the kernel can write it directly, else a fresh contiguous buffer in native order."""
    if not cnp.PyArray_IS_C_CONTIGUOUS(result) or not cnp.PyArray_ISALIGNED(result) \
            or not cnp.PyArray_ISNOTSWAPPED(result):
        return np.empty((<object>result).shape, dtype=result.dtype.newbyteorder("="))
    for x in inputs:
        # Writing in place over an identical input is safe element by element; a shifted overlap is not.
        if np.may_share_memory(result, x) and not (
                cnp.PyArray_DATA(<cnp.ndarray>x) == cnp.PyArray_DATA(result)
                and x.strides == (<object>result).strides):
            return np.empty((<object>result).shape, dtype=result.dtype)
    return result


def sigmoid_forward(x, out=None):
    """y = 1 / (1 + exp(-x)), elementwise, any shape, float32 or float64.

    Computed in the stable form 1/(1+e) for x >= 0 and e/(1+e) for x < 0 with e = exp(-|x|), so no
    input (+-1000, +-inf) overflows or gives NaN; one fused vectorized pass.
    """
    cdef cnp.ndarray X = _check_array(x, "x", "sigmoid_forward")
    X = _c_contiguous(X)
    cdef cnp.ndarray result = np.empty((<object>X).shape, dtype=X.dtype) if out is None else \
        _check_out(out, (<object>X).shape, X.dtype, "sigmoid_forward")
    cdef cnp.ndarray target = _elementwise_target(result, (X,))
    cdef mdl_index n = cnp.PyArray_SIZE(X)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(target)
    if cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT32:
        with nogil:
            mdl_sigmoid_fwd_f32(<const float *>px, <float *>py, n)
    else:
        with nogil:
            mdl_sigmoid_fwd_f64(<const double *>px, <double *>py, n)
    if target is not result:
        result[...] = target
    return result


def normal_cdf(x, out=None):
    """Φ(x) = erfc(-x/√2) / 2, the standard normal CDF, elementwise, any shape, float32 or float64.

    Computed in double precision with the C library's erfc (exact to its last bits, as Python's
    math.erfc; no cancellation in the lower tail, where Φ is tiny) and rounded to x's dtype. NumPy has no
    erf: this is what GELU needs (PyTorch's default GELU uses the exact Φ).
    """
    cdef cnp.ndarray X = _check_array(x, "x", "normal_cdf")
    X = _c_contiguous(X)
    cdef cnp.ndarray result = np.empty((<object>X).shape, dtype=X.dtype) if out is None else \
        _check_out(out, (<object>X).shape, X.dtype, "normal_cdf")
    cdef cnp.ndarray target = _elementwise_target(result, (X,))
    cdef mdl_index n = cnp.PyArray_SIZE(X), i
    cdef float *x32
    cdef float *y32
    cdef double *x64
    cdef double *y64
    if cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT32:
        x32, y32 = <float *>cnp.PyArray_DATA(X), <float *>cnp.PyArray_DATA(target)
        with nogil:
            for i in range(n):
                y32[i] = <float>(0.5 * erfc(-<double>x32[i] / M_SQRT2))
    else:
        x64, y64 = <double *>cnp.PyArray_DATA(X), <double *>cnp.PyArray_DATA(target)
        with nogil:
            for i in range(n):
                y64[i] = 0.5 * erfc(-x64[i] / M_SQRT2)
    if target is not result:
        result[...] = target
    return result


def sigmoid_backward(y, grad_y, out=None):
    """grad_x = grad_y * y * (1 - y), where y = sigmoid(x): the derivative of the sigmoid, fused.

    `y` and `grad_y` must have the same shape and dtype (no broadcasting).
    """
    cdef cnp.ndarray Y = _check_array(y, "y", "sigmoid_backward")
    cdef cnp.ndarray G = _check_array(grad_y, "grad_y", "sigmoid_backward")
    if (<object>Y).shape != (<object>G).shape:
        raise ValueError(f"sigmoid_backward: y has shape {y.shape} but grad_y has shape {grad_y.shape}")
    if Y.dtype != G.dtype:
        raise TypeError(f"sigmoid_backward: y has dtype {Y.dtype} but grad_y has dtype {G.dtype}")
    Y = _c_contiguous(Y)
    G = _c_contiguous(G)
    cdef cnp.ndarray result = np.empty((<object>Y).shape, dtype=Y.dtype) if out is None else \
        _check_out(out, (<object>Y).shape, Y.dtype, "sigmoid_backward")
    cdef cnp.ndarray target = _elementwise_target(result, (Y, G))
    cdef mdl_index n = cnp.PyArray_SIZE(Y)
    cdef void *py = cnp.PyArray_DATA(Y)
    cdef void *pg = cnp.PyArray_DATA(G)
    cdef void *po = cnp.PyArray_DATA(target)
    if cnp.PyArray_TYPE(Y) == cnp.NPY_FLOAT32:
        with nogil:
            mdl_sigmoid_bwd_f32(<const float *>py, <const float *>pg, <float *>po, n)
    else:
        with nogil:
            mdl_sigmoid_bwd_f64(<const double *>py, <const double *>pg, <double *>po, n)
    if target is not result:
        result[...] = target
    return result


# ------------------------------------------------------------------ axpby (the optimizers' update)
def axpby(alpha, x, beta, y):
    """y <- alpha * x + beta * y in place (BLAS's axpby); returns y.

    `x` and `y` have the same shape and dtype, float32 or float64 (no broadcasting); `y` must be
    writable. alpha and beta are rounded to that dtype first, as NumPy rounds a Python float. `x` may
    be `y` itself; an `x` that overlaps `y` otherwise is read as it was before the call. One pass, no
    temporary: SGD's p -= lr * g is axpby(-lr, g, 1, p). A `y` the kernel cannot write in place (not
    C-contiguous) is updated with NumPy instead.
    """
    cdef cnp.ndarray X = _check_array(x, "x", "axpby")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"axpby: y must be a numpy.ndarray, got {type(y).__name__}")
    cdef cnp.ndarray Y = <cnp.ndarray>y
    if (<object>X).shape != (<object>Y).shape:
        raise ValueError(f"axpby: x has shape {x.shape} but y has shape {y.shape}")
    if not _same_dtype(Y, X.dtype):
        raise TypeError(f"axpby: x has dtype {x.dtype} but y has dtype {y.dtype}")
    if not Y.flags.writeable:
        raise ValueError("axpby: y is read-only")
    cdef double a, b
    try:
        a, b = alpha, beta
    except TypeError:
        raise TypeError(f"axpby: alpha and beta must be real numbers, got {alpha!r} and {beta!r}") from None
    if not (cnp.PyArray_IS_C_CONTIGUOUS(Y) and cnp.PyArray_ISALIGNED(Y) and cnp.PyArray_ISNOTSWAPPED(Y)):
        scaled_x = Y.dtype.type(a) * X        # before y changes: x may share memory with y
        if b != 1.0:
            y *= Y.dtype.type(b)
        y += scaled_x
        return y
    X = _c_contiguous(X)
    if np.may_share_memory(X, Y) and not (cnp.PyArray_DATA(X) == cnp.PyArray_DATA(Y)):
        X = X.copy()                       # a shifted overlap: read a snapshot
    cdef mdl_index n = cnp.PyArray_SIZE(Y)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(Y)
    if cnp.PyArray_TYPE(Y) == cnp.NPY_FLOAT32:
        with nogil:
            mdl_axpby_f32(<float>a, <const float *>px, <float>b, <float *>py, n)
    else:
        with nogil:
            mdl_axpby_f64(a, <const double *>px, b, <double *>py, n)
    return y


# ------------------------------------------------------------------ memory pool (NumPy's data allocator)
cdef extern from "memory_pool.h" nogil:
    ctypedef struct mdl_pool_stats:
        size_t hits, misses, evictions, cached_bytes
    void *mdl_pool_handler()
    mdl_pool_stats mdl_pool_get_stats()
    void mdl_pool_trim(size_t keep_bytes)
    void mdl_pool_set_cap(size_t bytes)
    size_t mdl_pool_cap()
    void mdl_pool_use_huge_pages(int allowed)
    size_t mdl_pool_huge_page_bytes()

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)     # returns the previous handler (NumPy >= 1.22)

_POOL_HANDLER = PyCapsule_New(mdl_pool_handler(), "mem_handler", NULL)


def _switched_on(str variable):
    """Whether the environment leaves `variable` on (unset, or anything but 0/false/no/off)."""
    return os.environ.get(variable, "1").strip().lower() not in ("0", "false", "no", "off")


_POOL_ON = _switched_on("MINIDL_MEMORY_POOL")
mdl_pool_use_huge_pages(_switched_on("MINIDL_HUGE_PAGES"))


cdef class memory_pool:
    """``with memory_pool(): ...`` -- NumPy arrays allocated inside take their data from minidl's caching
    allocator (csrc/memory_pool.c): a freed block of 64 KiB or more is kept (up to
    ``memory_pool_stats()["cap_bytes"]`` bytes, ``set_memory_pool_cap``; oldest dropped first) and given to
    the next array it fits, so a training step's large arrays reuse the previous step's memory instead of
    page-faulting in fresh pages. Arrays keep the allocator
    they were made with wherever they go. Scoped to the current thread's context (NumPy's handler is a
    context variable); the autograd engine, module calls and a pending weight gradient's materialization
    enter it, and ``nn.Linear`` makes its weight in it. Blocks of a transparent huge page or more (Linux
    THP, 2 MiB on x86-64) start on one and are advised to use them (``memory_pool_stats()['huge_page_bytes']``;
    MINIDL_HUGE_PAGES=0 at import turns that off). One instance per ``with``. MINIDL_MEMORY_POOL=0 turns it
    into a no-op. Blocks that end out of order (two generators each inside one) still leave NumPy's own
    handler once the last one has ended: the context counts the pools open in it and keeps the handler
    from before the first. A block left in another thread than it was entered in (a generator closed
    there) changes nothing in that thread; the entering one keeps the pool's handler.
    """
    cdef bint _entered, _active

    def __enter__(self):
        if self._entered:
            raise RuntimeError("memory_pool(): an instance can be entered once; make a new one per `with`")
        self._entered = True
        if _POOL_ON:
            listed, before = _pools_open.get()
            previous = PyDataMem_SetHandler(_POOL_HANDLER)
            _pools_open.set((_open_here(self) + (self,), before if listed else previous))
            self._active = True
        return self

    def __exit__(self, *exc_info):
        if self._active:
            self._active = False
            listed, before = _pools_open.get()
            if self not in listed:
                return False            # entered in another thread or context: nothing of it is open here
            still_open = _open_here(self)
            if still_open:
                _pools_open.set((still_open, before))
            else:
                PyDataMem_SetHandler(before)
                _pools_open.set(((), None))
        return False


# The pools open in this context, oldest first, and NumPy's handler from before the first. A pool left in
# another context is inactive but still listed here: the next block to start or end here drops it.
_pools_open = contextvars.ContextVar("minidl_memory_pools_open", default=((), None))


cdef tuple _open_here(memory_pool leaving):
    """The pools listed as open in this context, less `leaving` and less any that ended in another one."""
    cdef memory_pool pool
    still_open = []
    for pool in _pools_open.get()[0]:
        if pool is not leaving and pool._active:
            still_open.append(pool)
    return tuple(still_open)


def memory_pool_stats():
    """The pool's counters: {'hits', 'misses', 'evictions', 'cached_bytes', 'cap_bytes', 'huge_page_bytes'}
    (requests of 64 KiB or more served from kept blocks, served fresh, kept blocks dropped for the cap, bytes
    kept now, the most bytes kept, the huge page its large blocks are aligned to: 0 for none)."""
    cdef mdl_pool_stats s = mdl_pool_get_stats()
    return {"hits": s.hits, "misses": s.misses, "evictions": s.evictions, "cached_bytes": s.cached_bytes,
            "cap_bytes": mdl_pool_cap(), "huge_page_bytes": mdl_pool_huge_page_bytes()}


def set_memory_pool_cap(nbytes):
    """Keep at most `nbytes` of freed blocks (default 256 MiB; 0 keeps none; more than the address space: no
    cap); frees what is over it now."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)):
        raise TypeError(f"set_memory_pool_cap expects an int, got {type(nbytes).__name__}")
    if nbytes < 0:
        raise ValueError(f"set_memory_pool_cap expects nbytes >= 0, got {nbytes}")
    mdl_pool_set_cap(<size_t>min(nbytes, SIZE_MAX))      # 2**70 would not fit a size_t: no cap is its meaning


def release_memory_pool():
    """Free every kept block now (arrays in use are untouched), like torch.cuda.empty_cache()."""
    mdl_pool_trim(0)


# ------------------------------------------------------------------ import-time choice
def _select_at_import():
    """Fastest build the CPU supports, or the one MINIDL_KERNELS names (e.g. 'generic', the portable one).

    A name that is unknown or not available here is a RuntimeWarning, never an import failure: the
    fastest build is used instead.
    """
    available = available_kernels()
    value = os.environ.get("MINIDL_KERNELS", "").strip()
    wanted = value.lower()
    if wanted and wanted not in available:
        warnings.warn(f"MINIDL_KERNELS={value!r} is not an available kernel build here (available: "
                      f"{', '.join(available)}); using {available[0]!r}", RuntimeWarning)
        wanted = ""
    use_kernels(wanted or available[0])


mdl_init()
_select_at_import()
