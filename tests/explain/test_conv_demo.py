"""cnnkit explain conv|pool: the output-size formula and the frames of the sliding window."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.errors import ConfigError, ShapeError
from cnnkit.explain.conv_demo import conv_demo, pool_demo


def test_conv_demo_works_the_formula_and_draws_every_position(tmp_path):
    d = conv_demo("6x6", 3, 2, 1, out=tmp_path)
    assert d.output.shape == (3, 3)  # floor((6 + 2 - 3) / 2) + 1 = 3
    assert "floor((6 + 2*1 - 3) / 2) + 1 = floor(5 / 2) + 1 = 3" in d.text
    assert d.torch_agrees
    # out[1,1]: window at input (1,1), the vertical-edge kernel: left column minus right column
    x = d.input
    assert d.output[1, 1] == x[1:4, 1].sum() - x[1:4, 3].sum()
    assert d.steps[0].top == -1 and d.steps[1].left == 1  # padding, then one stride to the right
    assert len(d.frames) == 9 and all(p.is_file() for p in d.frames)
    with Image.open(d.gif) as gif:
        assert gif.n_frames == 9


def test_pool_demo_max_and_average_ignore_padding(tmp_path):
    d = pool_demo("4x4", 2, out=tmp_path)
    x = d.input
    assert d.output.shape == (2, 2) and d.output[1, 0] == x[2:4, 0:2].max() and d.torch_agrees
    a = pool_demo("5x5", 2, 2, 1, op="avg")
    assert a.output.shape == (3, 3)
    assert a.output[0, 0] == a.input[0, 0]  # three of its four cells are padding
    assert np.isclose(a.output[1, 1], a.input[1:3, 1:3].mean()) and a.torch_agrees and not a.frames


def test_demo_rejects_sizes_that_cannot_work():
    with pytest.raises(ShapeError, match="does not fit"):
        conv_demo("3x3", 5)
    with pytest.raises(ConfigError, match="look like 6 or 6x6"):
        conv_demo("six", 3)
    with pytest.raises(ConfigError, match="at most half"):
        pool_demo("4x4", 2, padding=2)


def test_explain_conv_cli(tmp_path, capsys):
    assert main(["explain", "conv", "--input", "6x6", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "output 3x3" in out and "PyTorch's conv2d gives the same output" in out
    assert (tmp_path / "conv.gif").is_file() and (tmp_path / "conv_step_09.png").is_file()
    assert main(["explain", "pool", "--input", "4x4", "--kernel", "2", "--op", "avg", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "avgpool.gif").is_file()
    assert main(["explain", "conv", "--input", "2x2", "--kernel", "5"]) == 2
    assert "does not fit" in capsys.readouterr().err
