"""The memory layout of minigen's convolutions: im2col's column matrix, col2im, channel rows.

A convolution becomes matrix products once every window of the input is copied
into a column of one matrix (im2col). The layout of that matrix is chosen once,
for all three products of a convolution. cols has one row per kernel entry
(c, a, b) and one column per output pixel (i, j, n):

    forward           y     = W   @ cols     (O, C*kh*kw) @ (C*kh*kw, Ho*Wo*N)
    gradient in w     dW    = G   @ cols^T   (O, Ho*Wo*N) @ (Ho*Wo*N, C*kh*kw)
    gradient in x     dcols = W^T @ G        (C*kh*kw, O) @ (O, Ho*Wo*N), then col2im

Each is one 2-d GEMM of contiguous matrices or their transposed views (BLAS reads
either order, so no copy). Two choices make the copies around them cheap:

- y and G are "channel rows" (O, Ho*Wo*N), and they stay so in memory: a convolution
  returns its output as an (N, O, Ho, Wo) *view* of those rows (batch_first, col2im),
  not a copy. numpy's elementwise ops (bias, batch norm, ReLU and their gradients)
  give each result its input's memory order, so the next convolution, or the VJP
  coming back, finds its channel rows already laid out: channel_rows is then a free
  reshape and pad_batch_last copies contiguous runs. Copying to the API's order
  after every convolution and back before the next cost a tenth of a DCGAN step
  (benchmarks/README.md, "What was tried").
- the batch index n varies fastest. im2col and col2im copy and add strided slices,
  and numpy runs one inner loop along the last axis: with n last that loop is N long
  and contiguous; with the pixel index j last (CS231n's notes order the columns
  (n, i, j)) it is Wo = 7 long at DCGAN's sizes, which measured 2x slower for both.

Plain numpy, no autograd: minigen.ops wraps these in primitives with their VJPs.
"""
import numpy as np


def pad_batch_last(x, padding):
    """x: (N, C, H, W) -> the same array zero-padded, stored as (C, H+2ph, W+2pw, N) but
    returned as a view with x's axis order (N, C, Hp, Wp), so that windows of it can be
    taken as of x."""
    n, c, h, w = x.shape
    ph, pw = padding
    xt = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    xt[:, ph:ph + h, pw:pw + w] = x.transpose(1, 2, 3, 0)  # (C, H, W, N)
    return xt.transpose(3, 0, 1, 2)  # (N, C, Hp, Wp), a view


def columns(windows):
    """Windows (N, C, Ho, Wo, kh, kw) of a pad_batch_last array -> cols (C*kh*kw, Ho*Wo*N), the one copy."""
    n, c, ho, wo, kh, kw = windows.shape
    return windows.transpose(1, 4, 5, 2, 3, 0).reshape(c * kh * kw, ho * wo * n)


def col2im(cols, x_shape, kernel, stride, padding, out_hw):
    """The adjoint of im2col: cols (C*kh*kw, Ho*Wo*N) -> (N, C, H, W), overlapping windows added.

    A loop over the kh*kw kernel offsets (never over pixels): offset (a, b) of every
    window lands on the strided grid xpad[c, a + s*i, b + s*j, n], one slice-add each.
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    cols = cols.reshape(c, kh, kw, *out_hw, n)
    # BEGIN SOLUTION
    # Padded on all sides, and big enough for windows that hang over the end (output_padding).
    full = np.zeros((c, max(h + 2 * ph, (out_hw[0] - 1) * sh + kh),
                     max(w + 2 * pw, (out_hw[1] - 1) * sw + kw), n), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            full[:, a:a + sh * out_hw[0]:sh, b:b + sw * out_hw[1]:sw] += cols[:, a, b]  # (C, Ho, Wo, N)
    return full[:, ph:ph + h, pw:pw + w].transpose(3, 0, 1, 2)  # (N, C, H, W), a view (module docstring)
    # END SOLUTION


def channel_rows(y):
    """(N, C, H, W) -> (C, H*W*N), the layout of the GEMMs above: a free reshape when y's memory
    is already channel rows (conv2d's output, or an elementwise function of a convolution's), else one copy."""
    return y.transpose(1, 2, 3, 0).reshape(y.shape[1], -1)


def batch_first(rows, n, hw):
    """(C, H*W*N) -> (N, C, H, W), the public API's shape, as a view: the memory stays channel rows."""
    return rows.reshape(len(rows), *hw, n).transpose(3, 0, 1, 2)
