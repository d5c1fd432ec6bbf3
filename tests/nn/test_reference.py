"""The NumPy reference layers agree with torch (float32) to 1e-5 on hundreds of random configurations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnkit.nn import reference as R
from cnnkit.nn.model import SpecNet
from cnnkit.nn.spec import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Pool,
    conv_output_size,
)

TOL = {"rtol": 1e-5, "atol": 1e-5}
EXAMPLES = settings(max_examples=200, deadline=None)


def rand(seed: int, *shape: int) -> np.ndarray:
    """Float32 values (the numbers torch sees), held as float64 for the reference."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32).astype(np.float64)


def torch_of(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(a.astype(np.float32))


# --------------------------------------------------------------------------- convolution


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    cin, fout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                             st.just("valid"), st.just("same")))
    if padding == "same":
        stride = (1, 1)  # torch's padding="same" takes stride 1 only
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    top, bottom, left, right = R.paddings(padding, h, w, (kh, kw), stride, dilation)
    assume(conv_output_size(h + top + bottom, kh, stride[0], 0, dilation[0]) >= 1)
    assume(conv_output_size(w + left + right, kw, stride[1], 0, dilation[1]) >= 1)
    seed = draw(st.integers(0, 2**31))
    x = rand(seed, draw(st.integers(1, 2)), cin, h, w)
    weight = rand(seed + 1, fout, cin // groups, kh, kw)
    bias = rand(seed + 2, fout) if draw(st.booleans()) else None
    return x, weight, bias, stride, padding, dilation, groups


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@EXAMPLES
@given(conv_configs())
def test_conv2d_loops_and_fast_path_agree_with_torch(cfg):
    x, weight, bias, stride, padding, dilation, groups = cfg
    expected = F.conv2d(torch_of(x), torch_of(weight), torch_of(bias), stride=stride,
                        padding=padding if isinstance(padding, str) else tuple(np.broadcast_to(padding, 2)),
                        dilation=dilation, groups=groups).numpy()
    np.testing.assert_allclose(R.conv2d(x, weight, bias, stride, padding, dilation, groups), expected, **TOL)
    np.testing.assert_allclose(R.conv2d_fast(x, weight, bias, stride, padding, dilation, groups), expected, **TOL)


@EXAMPLES
@given(conv_configs(), st.data())
def test_conv2d_at_works_one_output_by_hand(cfg, data):
    x, weight, bias, stride, padding, dilation, groups = cfg
    expected = R.conv2d_fast(x, weight, bias, stride, padding, dilation, groups)
    f = data.draw(st.integers(0, expected.shape[1] - 1))
    i = data.draw(st.integers(0, expected.shape[2] - 1))
    j = data.draw(st.integers(0, expected.shape[3] - 1))
    trace = R.conv2d_at(x[0], weight, bias, f, i, j, stride, padding, dilation, groups)
    assert trace.value == pytest.approx(expected[0, f, i, j], abs=1e-9)
    assert len(trace.terms) == weight.shape[1] * weight.shape[2] * weight.shape[3]
    assert trace.value == pytest.approx(trace.bias + sum(t.pixel * t.weight for t in trace.terms), abs=1e-12)
    for t in trace.terms:  # each term is a real pixel of the image, or a zero of the padding
        assert t.weight == weight[f, t.channel % weight.shape[1], t.kernel_row, t.kernel_col]
        if not t.padding:
            assert t.pixel == x[0, t.channel, t.row, t.col]
        else:
            assert t.pixel == 0.0
    assert f"output[{f}, {i}, {j}]" in trace.format(max_terms=3)


def test_conv2d_at_prints_the_guide_example():
    image = np.array([[[1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]], dtype=float)
    kernel = np.array([[[[1, 0], [0, 1]]]], dtype=float)
    trace = R.conv2d_at(image, kernel, None, 0, 1, 1)
    assert trace.value == 2.0 and [t.product for t in trace.terms] == [1.0, 0.0, 0.0, 1.0]
    assert "total = 2.0000" in trace.format()


# --------------------------------------------------------------------------- pooling


@st.composite
def pool_configs(draw):
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, size[0] // 2)), draw(st.integers(0, size[1] // 2)))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    s = size if stride is None else stride
    assume(conv_output_size(h, size[0], s[0], padding[0]) >= 1 and conv_output_size(w, size[1], s[1], padding[1]) >= 1)
    x = rand(draw(st.integers(0, 2**31)), draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return x, size, stride, padding


@EXAMPLES
@given(pool_configs())
def test_max_pool_agrees_with_torch(cfg):
    x, size, stride, padding = cfg
    expected = F.max_pool2d(torch_of(x), size, stride, padding).numpy()
    np.testing.assert_allclose(R.max_pool2d(x, size, stride, padding), expected, **TOL)
    np.testing.assert_allclose(R.max_pool2d_fast(x, size, stride, padding), expected, **TOL)


@EXAMPLES
@given(pool_configs(), st.booleans())
def test_avg_pool_agrees_with_torch(cfg, count_include_pad):
    x, size, stride, padding = cfg
    expected = F.avg_pool2d(torch_of(x), size, stride, padding, count_include_pad=count_include_pad).numpy()
    np.testing.assert_allclose(R.avg_pool2d(x, size, stride, padding, count_include_pad), expected, **TOL)
    np.testing.assert_allclose(R.avg_pool2d_fast(x, size, stride, padding, count_include_pad), expected, **TOL)


@EXAMPLES
@given(st.integers(0, 2**31), st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6))
def test_global_pools_agree_with_torch(seed, n, c, h, w):
    x = rand(seed, n, c, h, w)
    np.testing.assert_allclose(R.global_avg_pool(x), F.adaptive_avg_pool2d(torch_of(x), 1).flatten(1).numpy(), **TOL)
    np.testing.assert_allclose(R.global_max_pool(x), F.adaptive_max_pool2d(torch_of(x), 1).flatten(1).numpy(), **TOL)


# --------------------------------------------------------------------------- activations


TORCH_ACTIVATIONS = {
    "relu": F.relu, "elu": F.elu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
@EXAMPLES
@given(seed=st.integers(0, 2**31), shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       scale=st.sampled_from([0.01, 1.0, 10.0, 60.0]))
def test_activation_agrees_with_torch(name, seed, shape, scale):
    x = rand(seed, *shape) * scale
    x.flat[0] = 0.0  # the kink of relu and friends, exactly
    np.testing.assert_allclose(R.ACTIVATIONS[name](x), TORCH_ACTIVATIONS[name](torch_of(x)).numpy(), **TOL)


@EXAMPLES
@given(seed=st.integers(0, 2**31), shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       slope=st.floats(0.0, 0.99))
def test_leaky_relu_agrees_with_torch(seed, shape, slope):
    x = rand(seed, *shape) * 5
    np.testing.assert_allclose(R.leaky_relu(x, slope), F.leaky_relu(torch_of(x), slope).numpy(), **TOL)


@EXAMPLES
@given(seed=st.integers(0, 2**31), shape=st.lists(st.integers(1, 5), min_size=2, max_size=4),
       scale=st.sampled_from([0.1, 1.0, 30.0, 200.0]), data=st.data())
def test_softmax_agrees_with_torch_and_sums_to_one(seed, shape, scale, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    x = rand(seed, *shape) * scale
    out = R.softmax(x, axis=axis)
    np.testing.assert_allclose(out, torch.softmax(torch_of(x), dim=axis).numpy(), **TOL)
    np.testing.assert_allclose(out.sum(axis=axis), 1.0, atol=1e-12)


# --------------------------------------------------------------------------- flatten, dense, norm


@EXAMPLES
@given(st.integers(0, 2**31), st.lists(st.integers(1, 4), min_size=2, max_size=4))
def test_flatten_agrees_with_torch(seed, shape):
    x = rand(seed, *shape)
    np.testing.assert_array_equal(R.flatten(x), torch.flatten(torch_of(x), 1).numpy())


@EXAMPLES
@given(st.integers(0, 2**31), st.integers(1, 3), st.integers(1, 12), st.integers(1, 6), st.booleans())
def test_dense_agrees_with_torch(seed, n, inputs, units, with_bias):
    x, weight = rand(seed, n, inputs), rand(seed + 1, units, inputs)
    bias = rand(seed + 2, units) if with_bias else None
    expected = F.linear(torch_of(x), torch_of(weight), torch_of(bias)).numpy()
    np.testing.assert_allclose(R.dense(x, weight, bias), expected, **TOL)
    np.testing.assert_allclose(R.dense_fast(x, weight, bias), expected, **TOL)


@EXAMPLES
@given(st.integers(0, 2**31), st.integers(1, 3), st.integers(1, 4), st.sampled_from([(), (3,), (2, 3)]))
def test_batch_norm_at_inference_agrees_with_torch(seed, n, c, spatial):
    x = rand(seed, n, c, *spatial)
    mean, var = rand(seed + 1, c), np.abs(rand(seed + 2, c)) + 0.1
    gamma, beta = rand(seed + 3, c), rand(seed + 4, c)
    expected = F.batch_norm(torch_of(x), torch_of(mean), torch_of(var), torch_of(gamma), torch_of(beta),
                            training=False, eps=1e-5).numpy()
    np.testing.assert_allclose(R.batch_norm(x, mean, var, gamma, beta), expected, **TOL)


# --------------------------------------------------------------------------- whole models

image_layers = st.one_of(
    st.builds(Conv, filters=st.integers(1, 4), kernel=st.integers(1, 3), stride=st.integers(1, 2),
              padding=st.sampled_from(["same", "valid", 1]), dilation=st.integers(1, 2)),
    st.builds(Pool, op=st.sampled_from(["max", "avg"]), size=st.integers(1, 2)),
    st.builds(Activation, name=st.sampled_from(Activation.NAMES), slope=st.just(0.2)),
    st.just(BatchNorm()), st.just(Dropout(0.5)),
)


@settings(max_examples=60, deadline=None)
@given(layers=st.lists(image_layers, min_size=1, max_size=4),
       tail=st.sampled_from([[Flatten(), Dense(4)], [GlobalPool("max"), Dense(3)], [GlobalPool("avg")]]),
       seed=st.integers(0, 2**31))
def test_a_whole_spec_net_runs_the_same_in_numpy(layers, tail, seed):
    torch.manual_seed(seed % 1000)
    try:
        model = SpecNet(layers + tail, (2, 7, 7))
    except Exception:  # a spec that empties the map is tested in test_spec.py
        assume(False)
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model.eval()
    x = rand(seed, 2, 2, 7, 7)
    out, kept = R.forward(model, x, keep=True)
    np.testing.assert_allclose(out, model(torch_of(x)).detach().numpy(), **TOL)
    assert kept[-1][0].split(".")[0] == list(model.layers._modules)[-1]  # every layer, in order
