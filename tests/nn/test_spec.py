"""The layer spec language: three forms that round-trip, clear errors, shapes that match torch."""

from __future__ import annotations

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.cli import main
from cnnkit.errors import ShapeError, SpecError
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
    from_yaml_list,
    infer_shapes,
    parse_spec,
    parse_token,
    to_text,
    to_yaml_list,
)

EVERY_TOKEN = [
    "conv32-3", "conv32-3-same", "conv8-3x5-s2x1-p1x2-d2-g2-nobias", "conv4-2-s2-same", "conv6-3-p1",
    "relu", "leaky_relu", "leaky_relu0.2", "leaky_relu1e-05", "elu", "gelu", "silu", "tanh", "sigmoid",
    "softmax", "maxpool2", "maxpool3-s2-p1", "avgpool2x3", "avgpool3-s1-p1", "gap", "gmp", "bn",
    "dropout0.3", "dropout0", "flatten", "dense10", "dense7-nobias",
]


@pytest.mark.parametrize("token", EVERY_TOKEN)
def test_every_token_reads_back_to_itself(token):
    layer = parse_token(token)
    assert layer.token() == token
    assert parse_token(layer.token()) == layer
    assert from_yaml_list(yaml.safe_load(yaml.safe_dump(to_yaml_list([layer])))) == [layer]


def test_aliases_and_defaults_are_written_the_short_way():
    assert to_text(parse_spec("conv32-3-s1-valid, ReLU ,maxpool2-s2,fc10,LeakyRelu0.01,batchnorm")) == (
        "conv32-3,relu,maxpool2,dense10,leaky_relu,bn")
    # Equal values in any spelling give equal layers, so spec -> text -> spec is exact.
    assert Conv(8, (3, 3), padding=0, stride=[1, 1]) == parse_token("conv8-3")
    assert Pool("max", [2, 2], stride=(2, 2)) == parse_token("maxpool2")
    assert Activation("relu", slope=0.3) == Activation("relu")


def test_python_yaml_and_text_forms_describe_the_same_layers():
    text = "conv16-3-same,bn,leaky_relu0.1,maxpool2,conv32-3x1-p1x0-d2-g4,gelu,avgpool2-s1,gap,dropout0.2,dense10"
    python = [Conv(16, 3, padding="same"), BatchNorm(), Activation("leaky_relu", 0.1), Pool("max", 2),
              Conv(32, (3, 1), padding=(1, 0), dilation=2, groups=4), Activation("gelu"),
              Pool("avg", 2, stride=1), GlobalPool("avg"), Dropout(0.2), Dense(10)]
    written = yaml.safe_dump(to_yaml_list(python))
    assert parse_spec(text) == python == from_yaml_list(yaml.safe_load(written))
    assert to_text(python) == text
    # The short YAML forms a person would write by hand.
    by_hand = yaml.safe_load("""
    - conv: {filters: 16, padding: same}
    - bn
    - {activation: {name: leaky_relu, slope: 0.1}}
    - maxpool2
    - conv: {filters: 32, kernel: [3, 1], padding: [1, 0], dilation: 2, groups: 4}
    - gelu
    - pool: {op: avg, size: 2, stride: 1}
    - global_pool
    - dropout: 0.2
    - dense: 10
    """)
    assert from_yaml_list(by_hand) == python


def _outputs(spec, seed=3):
    torch.manual_seed(seed)
    model = SpecNet(spec, (3, 16, 16), num_classes=10).eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    return model, model(x)


def test_yaml_and_python_forms_build_the_same_model_as_the_text_form():
    text = "conv8-3-same,bn,relu,maxpool2,conv16-3-s2-p1,silu,avgpool2-p1,flatten,dropout0.1,dense32,tanh"
    layers = parse_spec(text)
    forms = {"text": text, "yaml": yaml.safe_load(yaml.safe_dump(to_yaml_list(layers))), "python": layers}
    built = {name: _outputs(spec) for name, spec in forms.items()}
    ref_model, ref_out = built["text"]
    for name, (model, out) in built.items():
        assert {k: v.shape for k, v in model.state_dict().items()} == {
            k: v.shape for k, v in ref_model.state_dict().items()}, name
        torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
        # model -> spec: the model keeps its spec, with the classifier it was given.
        assert model.spec == text + ",dense10"
        assert SpecNet(model.spec, (3, 16, 16)).spec == model.spec


@pytest.mark.parametrize(("spec", "bad", "hint"), [
    ("conv32-3,relu,maxpol2,dense10", "maxpol2", "did you mean maxpool"),
    ("conv32-3, relu,  conv8-3-q3", "conv8-3-q3", "unknown conv option 'q3'"),
    ("conv32,relu", "conv32", "kernel size"),
    ("relu, dense", "dense", "dense needs a number"),
    ("maxpool2-x3", "maxpool2-x3", "unknown pooling option"),
    ("dropout1.5", "dropout1.5", "dropout rate must be in [0, 1)"),
    ("conv6-3-g4", "conv6-3-g4", "multiple of groups"),
])
def test_a_bad_token_is_pointed_at_and_the_valid_forms_listed(spec, bad, hint):
    with pytest.raises(SpecError) as e:
        parse_spec(spec)
    lines = str(e.value).splitlines()
    assert hint in lines[0] and repr(bad) in lines[0]
    assert lines[1] == f"  {spec}"
    assert lines[2] == "  " + " " * spec.index(bad) + "^" * len(bad)
    assert lines[3].startswith("Valid layers: conv{F}-{K}") and "leaky_relu[{slope}]" in lines[3]


@pytest.mark.parametrize("items", [
    [{"conv": {"filter": 8}}], [{"cnv": {"filters": 8}}], [{"conv": {"filters": 8.5}}],
    [{"dense": 10, "relu": None}], "relu", [{"pool": {"op": "min"}}],
])
def test_bad_yaml_is_a_spec_error(items):
    with pytest.raises(SpecError):
        from_yaml_list(items)


# --------------------------------------------------------------------------- shapes


def test_the_formula_on_the_guide_example():
    # 28x28, 3x3 kernel, stride 1, no padding -> 26; with padding 1 -> 28; stride 2 -> 13.
    assert conv_output_size(28, 3) == 26
    assert conv_output_size(28, 3, p=1) == 28
    assert conv_output_size(28, 2, s=2) == 14
    assert conv_output_size(28, 3, s=2, p=1) == 14
    assert conv_output_size(28, 3, d=2) == 24


image_layers = st.one_of(
    st.builds(Conv, filters=st.integers(1, 4), kernel=st.integers(1, 4), stride=st.integers(1, 3),
              padding=st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2)),
              dilation=st.integers(1, 2)),
    st.builds(Pool, op=st.sampled_from(["max", "avg"]), size=st.integers(1, 3),
              stride=st.one_of(st.none(), st.integers(1, 3)), padding=st.just(0)),
    st.builds(Pool, op=st.sampled_from(["max", "avg"]), size=st.just(3), stride=st.integers(1, 3),
              padding=st.just(1)),
    st.builds(Activation, name=st.sampled_from(Activation.NAMES)),
    st.just(BatchNorm()), st.builds(Dropout, rate=st.sampled_from([0.0, 0.25])),
)
tails = st.sampled_from([[], [Flatten()], [GlobalPool("avg")], [GlobalPool("max"), Dense(5)], [Dense(3)]])


@settings(max_examples=150, deadline=None)
@given(layers=st.lists(image_layers, min_size=1, max_size=4), tail=tails,
       size=st.integers(1, 12), channels=st.integers(1, 3))
def test_inferred_shapes_match_torch_or_the_error_names_the_layer(layers, tail, size, channels):
    layers = layers + tail
    assert parse_spec(to_text(layers)) == layers  # random specs round-trip too
    try:
        shapes = infer_shapes(layers, (channels, size, size))
    except ShapeError as e:
        assert "layer " in str(e) and ("empties the feature map" in str(e) or "groups" in str(e))
        assert "floor((" in str(e) or "groups" in str(e)
        return
    model = SpecNet(layers, (channels, size, size)).eval()
    out = model(torch.randn(2, channels, size, size))
    assert tuple(out.shape[1:]) == shapes[-1] == model.output_shape


def test_empty_maps_raise_shape_errors_that_show_the_formula():
    with pytest.raises(ShapeError, match=r"layer 1 \(conv8-7\).*input height 5, kernel 7.*"
                                         r"floor\(\(5 \+ 0 - 1\*\(7-1\) - 1\)/1\) \+ 1 = -1"):
        infer_shapes(parse_spec("conv8-7,relu"), (1, 5, 5))
    with pytest.raises(ShapeError, match=r"layer 3 \(maxpool4\).*input height 2"):
        infer_shapes(parse_spec("conv8-3,maxpool4,maxpool4"), (1, 12, 12))
    with pytest.raises(ShapeError, match="needs an image"):
        infer_shapes(parse_spec("flatten,conv8-3"), (1, 12, 12))


@pytest.mark.parametrize(("spec", "shape", "words"), [
    ("conv8-7,relu", "1x5x5", "layer 1 (conv8-7) empties the feature map: input height 5"),
    ("conv8-3,relu,maxpool4,maxpool4", "1x12x12", "layer 4 (maxpool4) empties the feature map"),
    ("conv8-3,relu,mxpool2", "1x12x12", "cannot read layer 3 'mxpool2'"),
])
def test_cli_reports_shape_and_spec_errors_with_exit_2_and_no_traceback(spec, shape, words, capsys):
    assert main(["summary", spec, "--input", shape]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err


def test_softmax_after_the_classifier_is_kept_and_checked():
    model = SpecNet("conv4-3,relu,flatten,dense10,softmax", (1, 8, 8), num_classes=10)
    assert model.spec.endswith("dense10,softmax") and model.num_classes == 10
    probs = model(torch.randn(3, 1, 8, 8))
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    with pytest.raises(ShapeError, match="ends in dense10 but the data has 5 classes"):
        SpecNet("conv4-3,relu,flatten,dense10,softmax", (1, 8, 8), num_classes=5)
    model.reset_classifier(4)
    assert model.spec.endswith("dense4,softmax") and model(torch.randn(1, 1, 8, 8)).shape == (1, 4)


def test_spec_net_interface_and_block_groups():
    model = SpecNet("conv8-3-same,bn,relu,maxpool2,conv16-3,relu,gap,dense10", (1, 12, 12))
    assert model.block_groups == ["layers.conv1", "layers.bn1", "layers.conv2", "layers.dense1"]
    assert all(model.get_submodule(name) is not None for name in model.block_groups)
    x = torch.randn(2, 1, 12, 12)
    feats = model.forward_features(x)
    assert feats.shape == (2, 16) and model.num_features == 16
    torch.testing.assert_close(model.forward_head(feats), model(x))
