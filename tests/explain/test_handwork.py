"""The hand-worked convolution value is the NumPy reference's arithmetic, with where the window starts."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.explain.handwork import conv_params, work_conv_value, worked_markdown
from cnnkit.nn.reference import Term, conv2d_at, conv2d_fast


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), ((2, 1), (1, 2), 1, 1),
                                                               (2, 2, 2, 1), (1, 1, 1, 2), (3, 0, 1, 4)])
def test_handwork_and_the_reference_agree_term_for_term(stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 9, 10))
    weight = rng.normal(size=(8, 4 // groups, 3, 3))
    bias = rng.normal(size=8)
    out = conv2d_fast(x[None], weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)[0]
    for f, i, j in [(0, 0, 0), (7, out.shape[1] - 1, out.shape[2] - 1), (5, out.shape[1] // 2, 1)]:
        worked = work_conv_value(x, weight, bias, f, i, j, stride=stride, padding=padding, dilation=dilation,
                                 groups=groups)
        trace = conv2d_at(x, weight, bias, f, i, j, stride=stride, padding=padding, dilation=dilation,
                          groups=groups)
        assert worked.terms == trace.terms and all(isinstance(t, Term) for t in worked.terms)
        assert worked.value == pytest.approx(trace.value, abs=1e-12) == pytest.approx(float(out[f, i, j]))
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        assert (worked.top, worked.left) == (i * sh - ph, j * sw - pw)


def test_worked_markdown_reads_the_reference_terms():
    import torch

    conv = torch.nn.Conv2d(1, 2, 3, padding="same")
    x = np.arange(25.0).reshape(1, 5, 5)
    params = conv_params(conv)
    assert params == {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1}
    worked = work_conv_value(x, conv.weight.detach().numpy(), conv.bias.detach().numpy(), 1, 0, 0, **params)
    text = worked_markdown(worked, layer="conv", actual=worked.value, raw=np.zeros((1, 5, 5), np.uint8),
                           mean=[0.0], std=[1.0])
    assert "| 0 | -1 | -1 | pad |" in text and "agrees" in text and len(worked.terms) == 9
