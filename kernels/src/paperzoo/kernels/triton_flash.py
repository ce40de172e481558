"""Flash attention in Triton: tiled forward and backward with an online softmax.

Follows FlashAttention-2 (Dao, arXiv 2307.08691) and the Triton fused-attention tutorial
(triton-lang/triton, python/tutorials/06-fused-attention.py): one program per (query block,
batch x head) keeps a running row max ``m`` and row sum ``l`` in fp32 and rescales its output
accumulator as each key block arrives, so the (N, N) score matrix is never materialised. The
backward recomputes the scores from the saved log-sum-exp: one kernel accumulates dK and dV per
key block, another accumulates dQ per query block (two kernels instead of atomics, so the
gradients are deterministic).

Supported: q, k, v of shape (B, H, N, D) with any strides, fp16 / bf16 / fp32 inputs (fp32
accumulation), any Nq and Nk (tails are masked), head dims 16..128 (padded to the next power of
two), an additive or boolean ``attn_mask`` broadcastable to (B, H, Nq, Nk), and ``is_causal``
(top-left aligned, as torch SDPA). Not supported (the dispatcher falls back to SDPA): dropout,
a gradient for ``attn_mask``, and v with a head dim different from q's.

Interpreter note: under ``TRITON_INTERPRET=1`` (how the CPU tests run), ``tl.dot`` on bf16
operands returned garbage on the development machine (numpy has no bf16 matmul). Every kernel
therefore casts its ``tl.dot`` operands to fp32 when the interpreter is active (the ``DOT_FP32``
constexpr); bf16 interpreter tests stay on and exercise that path. Compiled GPU runs keep the
native bf16/fp16 tensor-core dots.

``TRITON_INTERPRET`` is read when this module is imported (``triton.jit`` picks the interpreter
at decoration time), so set it before the first import.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

__all__ = ["FlashAttentionFunction", "flash_attention", "interpreting"]

_LOG2E = 1.4426950408889634

# mask kinds passed to the kernels as constexprs
_NO_MASK, _ADDITIVE, _BOOLEAN = 0, 1, 2


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


# ------------------------------------------------------------------------------------------------
# kernels


@triton.jit
def _load_tile(ptrs, row_ok, col_ok, CHECK_ROWS: tl.constexpr, CHECK_COLS: tl.constexpr):
    """Load a 2-D tile, masking only the axes that can run past the tensor (zeros there)."""
    if CHECK_ROWS:
        if CHECK_COLS:
            x = tl.load(ptrs, mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        else:
            x = tl.load(ptrs, mask=row_ok[:, None], other=0.0)
    else:
        if CHECK_COLS:
            x = tl.load(ptrs, mask=col_ok[None, :], other=0.0)
        else:
            x = tl.load(ptrs)
    return x


@triton.jit
def _apply_mask(
    s, mask_base, rows, cols, row_ok, col_ok, stride_mm, stride_mn, MASK_KIND: tl.constexpr
):
    """Add the attention mask to scores ``s`` (log2 units). ``rows``/``cols`` index s's axes."""
    if MASK_KIND == 1:
        bias = tl.load(
            mask_base + rows[:, None] * stride_mm + cols[None, :] * stride_mn,
            mask=row_ok[:, None] & col_ok[None, :],
            other=0.0,
        )
        s = s + bias.to(tl.float32) * 1.4426950408889634
    elif MASK_KIND == 2:
        keep = tl.load(
            mask_base + rows[:, None] * stride_mm + cols[None, :] * stride_mn,
            mask=row_ok[:, None] & col_ok[None, :],
            other=0,
        )
        s = tl.where(keep != 0, s, float("-inf"))
    return s


@triton.jit
def _fwd_inner(
    acc,
    l_i,
    m_i,
    q,
    k_base,
    v_base,
    mask_base,
    offs_m,
    offs_n,
    offs_d,
    stride_kn,
    stride_kd,
    stride_vn,
    stride_vd,
    stride_mm,
    stride_mn,
    N_Q,
    N_K,
    qk_scale,
    lo,
    hi,
    MASK_KIND: tl.constexpr,
    IS_CAUSAL: tl.constexpr,
    BOUNDS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_FP32: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Online-softmax sweep over key blocks [lo, hi). ``BOUNDS`` adds tail and causal masks."""
    d_ok = offs_d < HEAD_DIM
    m_ok = offs_m < N_Q
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        n_ok = cols < N_K
        kt = _load_tile(
            k_base + offs_d[:, None] * stride_kd + cols[None, :] * stride_kn,
            d_ok,
            n_ok,
            HEAD_DIM != BLOCK_D,
            BOUNDS,
        )
        v = _load_tile(
            v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
            n_ok,
            d_ok,
            BOUNDS,
            HEAD_DIM != BLOCK_D,
        )
        if DOT_FP32:
            kt = kt.to(tl.float32)
            v = v.to(tl.float32)
        s = tl.dot(q, kt, input_precision=PRECISION) * qk_scale
        s = _apply_mask(s, mask_base, offs_m, cols, m_ok, n_ok, stride_mm, stride_mn, MASK_KIND)
        if BOUNDS:
            s = tl.where(n_ok[None, :], s, float("-inf"))
            if IS_CAUSAL:
                s = tl.where(offs_m[:, None] >= cols[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row that has seen only masked keys keeps m = -inf; shift by 0 so exp2 gives 0, not NaN.
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(
    Q,
    K,
    V,
    Mask,
    Out,
    Lse,
    stride_qb,
    stride_qh,
    stride_qm,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_mb,
    stride_mh,
    stride_mm,
    stride_mn,
    stride_ob,
    stride_oh,
    stride_om,
    stride_od,
    H,
    N_Q,
    N_K,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    MASK_KIND: tl.constexpr,
    IS_CAUSAL: tl.constexpr,
    DOT_FP32: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < N_Q
    d_ok = offs_d < HEAD_DIM

    q_base = Q + off_b * stride_qb + off_h * stride_qh
    k_base = K + off_b * stride_kb + off_h * stride_kh
    v_base = V + off_b * stride_vb + off_h * stride_vh
    mask_base = Mask + off_b * stride_mb + off_h * stride_mh

    q = _load_tile(
        q_base + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd,
        m_ok,
        d_ok,
        True,
        HEAD_DIM != BLOCK_D,
    )
    if DOT_FP32:
        q = q.to(tl.float32)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    # Key blocks before `interior_end` are full and (if causal) left of the diagonal for every
    # row of this block: no tail or causal masks there. The rest is swept with masks.
    hi = N_K
    interior_end = (N_K // BLOCK_N) * BLOCK_N
    if IS_CAUSAL:
        hi = tl.minimum(N_K, start_m + BLOCK_M)
        interior_end = tl.minimum(interior_end, (start_m // BLOCK_N) * BLOCK_N)
    acc, l_i, m_i = _fwd_inner(
        acc, l_i, m_i, q, k_base, v_base, mask_base, offs_m, offs_n, offs_d,
        stride_kn, stride_kd, stride_vn, stride_vd, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, 0, interior_end,
        MASK_KIND, IS_CAUSAL, False, BLOCK_N, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip
    acc, l_i, m_i = _fwd_inner(
        acc, l_i, m_i, q, k_base, v_base, mask_base, offs_m, offs_n, offs_d,
        stride_kn, stride_kd, stride_vn, stride_vd, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, interior_end, hi,
        MASK_KIND, IS_CAUSAL, True, BLOCK_N, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip

    # Fully masked rows (l = 0) give 0 output and lse = +inf, so the backward's p is 0 there.
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(l_i == 0.0, float("inf"), m_i + tl.log2(l_safe))
    o_ptrs = (
        Out
        + off_b * stride_ob
        + off_h * stride_oh
        + offs_m[:, None] * stride_om
        + offs_d[None, :] * stride_od
    )
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    tl.store(Lse + pid_bh.to(tl.int64) * N_Q + offs_m, lse, mask=m_ok)


@triton.jit
def _bwd_dkdv_inner(
    dk,
    dv,
    k,
    v,
    q_base,
    do_base,
    lse_base,
    delta_base,
    mask_base,
    offs_n,
    offs_d,
    stride_qm,
    stride_qd,
    stride_dom,
    stride_dod,
    stride_mm,
    stride_mn,
    N_Q,
    N_K,
    qk_scale,
    lo,
    hi,
    MASK_KIND: tl.constexpr,
    IS_CAUSAL: tl.constexpr,
    BOUNDS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_FP32: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Accumulate dK, dV of one key block over query blocks [lo, hi), in transposed form."""
    d_ok = offs_d < HEAD_DIM
    n_ok = offs_n < N_K
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + tl.arange(0, BLOCK_M)
        m_ok = rows < N_Q
        qt = _load_tile(
            q_base + offs_d[:, None] * stride_qd + rows[None, :] * stride_qm,
            d_ok,
            m_ok,
            HEAD_DIM != BLOCK_D,
            BOUNDS,
        )
        do = _load_tile(
            do_base + rows[:, None] * stride_dom + offs_d[None, :] * stride_dod,
            m_ok,
            d_ok,
            BOUNDS,
            HEAD_DIM != BLOCK_D,
        )
        if BOUNDS:
            lse = tl.load(lse_base + rows, mask=m_ok, other=float("inf"))
            delta = tl.load(delta_base + rows, mask=m_ok, other=0.0)
        else:
            lse = tl.load(lse_base + rows)
            delta = tl.load(delta_base + rows)
        if DOT_FP32:
            qt = qt.to(tl.float32)
            do = do.to(tl.float32)
        st = tl.dot(k, qt, input_precision=PRECISION) * qk_scale  # (BLOCK_N, BLOCK_M)
        st = _apply_mask(st, mask_base, offs_n, rows, n_ok, m_ok, stride_mn, stride_mm, MASK_KIND)
        if BOUNDS and IS_CAUSAL:
            st = tl.where(rows[None, :] >= offs_n[:, None], st, float("-inf"))
        pt = tl.exp2(st - lse[None, :])
        dv = tl.dot(pt.to(do.dtype), do, dv, input_precision=PRECISION)
        dpt = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        dst = pt * (dpt - delta[None, :])
        dk = tl.dot(dst.to(qt.dtype), tl.trans(qt), dk, input_precision=PRECISION)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv(
    Q,
    K,
    V,
    Mask,
    DO,
    Lse,
    Delta,
    DK,
    DV,
    stride_qb,
    stride_qh,
    stride_qm,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_mb,
    stride_mh,
    stride_mm,
    stride_mn,
    stride_dob,
    stride_doh,
    stride_dom,
    stride_dod,
    stride_gb,
    stride_gh,
    stride_gn,
    stride_gd,
    H,
    N_Q,
    N_K,
    qk_scale,
    sm_scale,
    HEAD_DIM: tl.constexpr,
    MASK_KIND: tl.constexpr,
    IS_CAUSAL: tl.constexpr,
    DOT_FP32: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    start_n = pid_n * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < N_K
    d_ok = offs_d < HEAD_DIM

    k = _load_tile(
        K + off_b * stride_kb + off_h * stride_kh
        + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd,
        n_ok, d_ok, True, HEAD_DIM != BLOCK_D,
    )  # fmt: skip
    v = _load_tile(
        V + off_b * stride_vb + off_h * stride_vh
        + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd,
        n_ok, d_ok, True, HEAD_DIM != BLOCK_D,
    )  # fmt: skip
    if DOT_FP32:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)

    q_base = Q + off_b * stride_qb + off_h * stride_qh
    do_base = DO + off_b * stride_dob + off_h * stride_doh
    lse_base = Lse + pid_bh.to(tl.int64) * N_Q
    delta_base = Delta + pid_bh.to(tl.int64) * N_Q
    mask_base = Mask + off_b * stride_mb + off_h * stride_mh

    # Query blocks: [lo, mid) straddle the causal diagonal (masked), [mid, full_end) are full and
    # below it (no masks), [max(mid, full_end), N_Q) is the query tail (masked). Key columns past
    # N_K need no mask here: their dK/dV rows are never stored.
    lo = 0
    mid = 0
    if IS_CAUSAL:
        lo = (start_n // BLOCK_M) * BLOCK_M
        mid = tl.cdiv(start_n + BLOCK_N, BLOCK_M) * BLOCK_M
    full_end = (N_Q // BLOCK_M) * BLOCK_M
    dk, dv = _bwd_dkdv_inner(
        dk, dv, k, v, q_base, do_base, lse_base, delta_base, mask_base, offs_n, offs_d,
        stride_qm, stride_qd, stride_dom, stride_dod, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, lo, mid,
        MASK_KIND, IS_CAUSAL, True, BLOCK_M, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip
    dk, dv = _bwd_dkdv_inner(
        dk, dv, k, v, q_base, do_base, lse_base, delta_base, mask_base, offs_n, offs_d,
        stride_qm, stride_qd, stride_dom, stride_dod, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, mid, full_end,
        MASK_KIND, IS_CAUSAL, False, BLOCK_M, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip
    dk, dv = _bwd_dkdv_inner(
        dk, dv, k, v, q_base, do_base, lse_base, delta_base, mask_base, offs_n, offs_d,
        stride_qm, stride_qd, stride_dom, stride_dod, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, tl.maximum(mid, full_end), N_Q,
        MASK_KIND, IS_CAUSAL, True, BLOCK_M, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip

    g_off = off_b * stride_gb + off_h * stride_gh
    g_ptrs = offs_n[:, None] * stride_gn + offs_d[None, :] * stride_gd
    g_mask = n_ok[:, None] & d_ok[None, :]
    tl.store(DK + g_off + g_ptrs, (dk * sm_scale).to(DK.dtype.element_ty), mask=g_mask)
    tl.store(DV + g_off + g_ptrs, dv.to(DV.dtype.element_ty), mask=g_mask)


@triton.jit
def _bwd_dq_inner(
    dq,
    q,
    do,
    lse,
    delta,
    k_base,
    v_base,
    mask_base,
    offs_m,
    offs_d,
    stride_kn,
    stride_kd,
    stride_vn,
    stride_vd,
    stride_mm,
    stride_mn,
    N_Q,
    N_K,
    qk_scale,
    lo,
    hi,
    MASK_KIND: tl.constexpr,
    IS_CAUSAL: tl.constexpr,
    BOUNDS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    DOT_FP32: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Accumulate dQ of one query block over key blocks [lo, hi)."""
    d_ok = offs_d < HEAD_DIM
    m_ok = offs_m < N_Q
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        n_ok = cols < N_K
        kt = _load_tile(
            k_base + offs_d[:, None] * stride_kd + cols[None, :] * stride_kn,
            d_ok,
            n_ok,
            HEAD_DIM != BLOCK_D,
            BOUNDS,
        )
        vt = _load_tile(
            v_base + offs_d[:, None] * stride_vd + cols[None, :] * stride_vn,
            d_ok,
            n_ok,
            HEAD_DIM != BLOCK_D,
            BOUNDS,
        )
        if DOT_FP32:
            kt = kt.to(tl.float32)
            vt = vt.to(tl.float32)
        s = tl.dot(q, kt, input_precision=PRECISION) * qk_scale
        s = _apply_mask(s, mask_base, offs_m, cols, m_ok, n_ok, stride_mm, stride_mn, MASK_KIND)
        if BOUNDS:
            s = tl.where(n_ok[None, :], s, float("-inf"))
            if IS_CAUSAL:
                s = tl.where(offs_m[:, None] >= cols[None, :], s, float("-inf"))
        p = tl.exp2(s - lse[:, None])
        dp = tl.dot(do, vt, input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(kt.dtype), tl.trans(kt), dq, input_precision=PRECISION)
    return dq


@triton.jit
def _attn_bwd_dq(
    Q,
    K,
    V,
    Mask,
    DO,
    Lse,
    Delta,
    DQ,
    stride_qb,
    stride_qh,
    stride_qm,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_mb,
    stride_mh,
    stride_mm,
    stride_mn,
    stride_dob,
    stride_doh,
    stride_dom,
    stride_dod,
    stride_gb,
    stride_gh,
    stride_gm,
    stride_gd,
    H,
    N_Q,
    N_K,
    qk_scale,
    sm_scale,
    HEAD_DIM: tl.constexpr,
    MASK_KIND: tl.constexpr,
    IS_CAUSAL: tl.constexpr,
    DOT_FP32: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    off_b = (pid_bh // H).to(tl.int64)
    off_h = (pid_bh % H).to(tl.int64)
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < N_Q
    d_ok = offs_d < HEAD_DIM

    q = _load_tile(
        Q + off_b * stride_qb + off_h * stride_qh
        + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd,
        m_ok, d_ok, True, HEAD_DIM != BLOCK_D,
    )  # fmt: skip
    do = _load_tile(
        DO + off_b * stride_dob + off_h * stride_doh
        + offs_m[:, None] * stride_dom + offs_d[None, :] * stride_dod,
        m_ok, d_ok, True, HEAD_DIM != BLOCK_D,
    )  # fmt: skip
    if DOT_FP32:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    lse = tl.load(Lse + pid_bh.to(tl.int64) * N_Q + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.load(Delta + pid_bh.to(tl.int64) * N_Q + offs_m, mask=m_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    k_base = K + off_b * stride_kb + off_h * stride_kh
    v_base = V + off_b * stride_vb + off_h * stride_vh
    mask_base = Mask + off_b * stride_mb + off_h * stride_mh
    hi = N_K
    interior_end = (N_K // BLOCK_N) * BLOCK_N
    if IS_CAUSAL:
        hi = tl.minimum(N_K, start_m + BLOCK_M)
        interior_end = tl.minimum(interior_end, (start_m // BLOCK_N) * BLOCK_N)
    dq = _bwd_dq_inner(
        dq, q, do, lse, delta, k_base, v_base, mask_base, offs_m, offs_d,
        stride_kn, stride_kd, stride_vn, stride_vd, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, 0, interior_end,
        MASK_KIND, IS_CAUSAL, False, BLOCK_N, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip
    dq = _bwd_dq_inner(
        dq, q, do, lse, delta, k_base, v_base, mask_base, offs_m, offs_d,
        stride_kn, stride_kd, stride_vn, stride_vd, stride_mm, stride_mn,
        N_Q, N_K, qk_scale, interior_end, hi,
        MASK_KIND, IS_CAUSAL, True, BLOCK_N, HEAD_DIM, BLOCK_D, DOT_FP32, PRECISION,
    )  # fmt: skip
    g_ptrs = (
        DQ
        + off_b * stride_gb
        + off_h * stride_gh
        + offs_m[:, None] * stride_gm
        + offs_d[None, :] * stride_gd
    )
    tl.store(g_ptrs, (dq * sm_scale).to(DQ.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])


# GPU launch configurations, autotuned per (lengths, head dim, mask, causal). Configs that do
# not fit in shared memory are skipped by the autotuner (OutOfResources).
_KEY = ["N_Q", "N_K", "HEAD_DIM", "MASK_KIND", "IS_CAUSAL"]
_FWD_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [
        (128, 64, 4, 3),
        (128, 64, 8, 3),
        (128, 128, 8, 3),
        (128, 32, 4, 4),
        (64, 64, 4, 3),
    ]
]
_BWD_DKDV_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [(32, 64, 4, 3), (64, 64, 4, 3), (32, 128, 8, 3), (64, 128, 8, 2)]
]
_BWD_DQ_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [(64, 32, 4, 3), (64, 64, 4, 3), (128, 32, 8, 3), (128, 64, 8, 2)]
]
_attn_fwd_tuned = triton.autotune(configs=_FWD_CONFIGS, key=_KEY)(_attn_fwd)
_attn_bwd_dkdv_tuned = triton.autotune(configs=_BWD_DKDV_CONFIGS, key=_KEY)(_attn_bwd_dkdv)
_attn_bwd_dq_tuned = triton.autotune(configs=_BWD_DQ_CONFIGS, key=_KEY)(_attn_bwd_dq)

# Interpreter runs are slow per program, so they use small fixed tiles instead of autotuning.
_INTERPRETER_BLOCKS = (16, 16)


# ------------------------------------------------------------------------------------------------
# host side


def _strides4(t: torch.Tensor) -> tuple[int, int, int, int]:
    s = t.stride()
    return s[0], s[1], s[2], s[3]


def _prepare_mask(
    attn_mask: torch.Tensor | None, shape: tuple[int, int, int, int], like: torch.Tensor
) -> tuple[int, torch.Tensor, tuple[int, int, int, int]]:
    """Broadcast the mask to (B, H, Nq, Nk) without copying; returns (kind, tensor, strides)."""
    if attn_mask is None:
        return _NO_MASK, like, (0, 0, 0, 0)
    mask = attn_mask.expand(shape)
    if mask.dtype == torch.bool:
        # Same-size reinterpretation (no copy): Triton reads uint8 more portably than int1.
        return _BOOLEAN, mask.view(torch.uint8), _strides4(mask)
    if not mask.is_floating_point():
        raise TypeError(f"attn_mask must be bool or floating point, got {attn_mask.dtype}")
    return _ADDITIVE, mask, _strides4(mask)


def _precision(dtype: torch.dtype) -> str:
    # fp32 inputs follow torch's TF32 switch, as torch matmuls do; half inputs ignore it.
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def _check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"flash_attention expects q, k, v of shape (B, H, N, D); got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise TypeError(f"flash_attention supports fp16, bf16 and fp32 inputs, got {q.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    b, h, _, d = q.shape
    if k.shape[:2] != (b, h) or v.shape[:2] != (b, h) or k.shape[2] != v.shape[2]:
        raise ValueError(
            f"q, k, v must share (B, H) and k, v the length: {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[3] != d or v.shape[3] != d:
        raise ValueError(f"q, k, v must share the head dim, got {d}, {k.shape[3]}, {v.shape[3]}")
    if not 16 <= d <= 128:
        raise ValueError(f"head dim {d} is outside the kernel's range 16..128")


def _launch(kernel_raw, kernel_tuned, grid_axis_len: int, bh: int, blocks, args, kwargs):
    """Launch with fixed tiles (interpreter / explicit blocks) or through the autotuner."""
    if blocks is not None:
        block_m, block_n = blocks
        along = block_m if kernel_raw is not _attn_bwd_dkdv else block_n
        grid = (triton.cdiv(grid_axis_len, along), bh)
        kernel_raw[grid](*args, **kwargs, BLOCK_M=block_m, BLOCK_N=block_n)
    else:
        key = "BLOCK_N" if kernel_raw is _attn_bwd_dkdv else "BLOCK_M"

        def grid(meta):
            return (triton.cdiv(grid_axis_len, meta[key]), bh)

        kernel_tuned[grid](*args, **kwargs)


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd wrapper: forward and backward both run the Triton kernels."""

    @staticmethod
    def forward(ctx, q, k, v, attn_mask, is_causal, scale, blocks):
        _check_inputs(q, k, v)
        b, h, n_q, d = q.shape
        n_k = k.shape[2]
        kind, mask, mask_strides = _prepare_mask(attn_mask, (b, h, n_q, n_k), q)
        out = torch.empty((b, h, n_q, d), device=q.device, dtype=q.dtype)
        lse = torch.empty((b * h, n_q), device=q.device, dtype=torch.float32)
        sm_scale = float(scale) if scale is not None else 1.0 / math.sqrt(d)
        interp = interpreting()
        if blocks is None and interp:
            blocks = _INTERPRETER_BLOCKS
        consts = dict(
            HEAD_DIM=d,
            MASK_KIND=kind,
            IS_CAUSAL=bool(is_causal),
            DOT_FP32=interp,
            PRECISION="ieee" if interp else _precision(q.dtype),
            BLOCK_D=max(16, triton.next_power_of_2(d)),
        )
        if n_q > 0 and b * h > 0:
            args = (
                q, k, v, mask, out, lse,
                *_strides4(q), *_strides4(k), *_strides4(v), *mask_strides, *_strides4(out),
                h, n_q, n_k, sm_scale * _LOG2E,
            )  # fmt: skip
            _launch(_attn_fwd, _attn_fwd_tuned, n_q, b * h, blocks, args, consts)
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.meta = (mask_strides, sm_scale, blocks, consts)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, _grad_lse):
        q, k, v, out, lse, mask = ctx.saved_tensors
        mask_strides, sm_scale, blocks, consts = ctx.meta
        b, h, n_q, _ = q.shape
        n_k = k.shape[2]
        dq = torch.empty(q.shape, device=q.device, dtype=q.dtype)
        dk = torch.empty(k.shape, device=k.device, dtype=k.dtype)
        dv = torch.empty(v.shape, device=v.device, dtype=v.dtype)
        if n_q == 0 or n_k == 0 or b * h == 0:
            return dq.zero_(), dk.zero_(), dv.zero_(), None, None, None, None
        # delta_i = sum_d dO_id * O_id, the softmax-backward row term (one fused torch op).
        delta = (grad_out.float() * out.float()).sum(-1).reshape(b * h, n_q).contiguous()
        common = (
            q, k, v, mask, grad_out, lse, delta,
        )  # fmt: skip
        strides = (
            *_strides4(q), *_strides4(k), *_strides4(v), *mask_strides, *_strides4(grad_out),
        )  # fmt: skip
        tail = (h, n_q, n_k, sm_scale * _LOG2E, sm_scale)
        _launch(
            _attn_bwd_dkdv, _attn_bwd_dkdv_tuned, n_k, b * h, blocks,
            (*common, dk, dv, *strides, *_strides4(dk), *tail), consts,
        )  # fmt: skip
        _launch(
            _attn_bwd_dq, _attn_bwd_dq_tuned, n_q, b * h, blocks,
            (*common, dq, *strides, *_strides4(dq), *tail), consts,
        )  # fmt: skip
        return dq, dk, dv, None, None, None, None


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    blocks: tuple[int, int] | None = None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) v with the Triton kernels, differentiable in q, k, v.

    Args:
        q: (B, H, Nq, D) fp16 / bf16 / fp32, on CUDA (or CPU under ``TRITON_INTERPRET=1``).
        k, v: (B, H, Nk, D), same dtype and device.
        attn_mask: bool (True = attend) or additive float, broadcastable to (B, H, Nq, Nk).
            No gradient flows to it.
        is_causal: top-left causal mask (query i sees keys j <= i), as torch SDPA.
        scale: logit scale, default 1/sqrt(D).
        blocks: (BLOCK_M, BLOCK_N) tile sizes; default autotuned on GPU, (16, 16) when
            interpreting.

    Returns:
        (B, H, Nq, D) in q's dtype. Rows whose keys are all masked out are 0.
    """
    if attn_mask is not None and is_causal:
        raise ValueError("pass either attn_mask or is_causal, not both (as torch SDPA)")
    out, _ = FlashAttentionFunction.apply(q, k, v, attn_mask, is_causal, scale, blocks)
    return out
