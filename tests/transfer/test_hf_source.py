"""The hf: source: transformers image-classification CNNs, from tiny random models placed in a local hub cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers_transfer import tiny_splits

import cnnkit
from cnnkit.errors import ModelError
from cnnkit.models import list_models
from cnnkit.models.adapt import TransferNet, first_conv
from cnnkit.models.pretrained import build_transfer
from cnnkit.models.registry import create_model
from cnnkit.models.sources_timm import hub_cache
from cnnkit.transfer.finetune import finetune
from conftest import unavailable

try:
    import transformers
except ImportError:  # in [dev]: under CI its absence is a failed install, not a reason to skip
    unavailable("Hugging Face transformers", "pip install -e '.[dev]'")

# Tiny configs of each family (a few thousand parameters), and the block groups cnnkit makes of them.
FAMILIES = {
    "resnet": (lambda: transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16],
                                                  depths=[1, 1, 1, 1], layer_type="basic"),
               ["stem", "stage1", "stage2", "stage3", "stage4", "head"]),
    "convnext": (lambda: transformers.ConvNextConfig(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1]),
                 ["stem", "stage1", "stage2", "stage3", "stage4", "top", "head"]),
    # MobileNetV2 and EfficientNet are flat lists of blocks: cnnkit cuts a stage where the resolution halves.
    "mobilenet_v2": (lambda: transformers.MobileNetV2Config(depth_multiplier=0.25, finegrained_output=False),
                     ["stem", "stage1", "stage2", "stage3", "stage4", "top", "head"]),
    "efficientnet": (lambda: transformers.EfficientNetConfig(width_coefficient=0.1, depth_coefficient=0.1,
                                                             hidden_dim=128),
                     ["stem..stage1", "stage2..stage3", "stage4..stage5", "top", "head"]),
    "regnet": (lambda: transformers.RegNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16],
                                                  depths=[1, 1, 1, 1], groups_width=8),
               ["stem", "stage1", "stage2", "stage3", "stage4", "head"]),
    "mobilenet_v1": (lambda: transformers.MobileNetV1Config(depth_multiplier=0.25),
                     ["stem", "stage1", "stage2", "stage3", "stage4", "stage5", "head"]),
    "convnextv2": (lambda: transformers.ConvNextV2Config(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1]),
                   ["stem", "stage1", "stage2", "stage3", "stage4", "top", "head"]),
    # BiT's first convolution standardises its weights: it must stay that class when adapted to grey.
    "bit": (lambda: transformers.BitConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                                            layer_type="bottleneck", num_groups=4),
            ["stem", "stage1", "stage2", "stage3", "stage4", "head"]),
}
PREPROCESSOR = {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.2, 0.2], "crop_size": {"height": 160, "width": 160}}


def hf_cache(hub_id: str, family: str, *, weights: bool = True) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random `family` model saved by save_pretrained where the hub cache keeps `hub_id` (refs/main)."""
    torch.manual_seed(2)
    config = FAMILIES[family][0]()
    config.num_labels = 5
    model = transformers.AutoModelForImageClassification.from_config(config)
    for module in model.modules():  # running statistics unlike a fresh model's, so loading them shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 2.0)
    folder = hub_cache() / f"models--{hub_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / "0123abc"
    if weights:
        model.save_pretrained(snapshot)
        (snapshot / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    else:
        config.save_pretrained(snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abc")
    return snapshot, {k: v.clone() for k, v in model.state_dict().items()}


def _same_outputs(model: torch.nn.Module, folder: Path, shape) -> None:
    reloaded = cnnkit.load(folder)
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), reloaded(x))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_loads_its_weights_adapts_grey_and_splits_in_order(family):
    prefix = f"model.{family}."
    snapshot, state = hf_cache(f"test/{family}", family)
    net, info = build_transfer(f"hf:test/{family}", input_shape=(1, 16, 16), num_classes=3, weights="imagenet")
    assert info.loaded == f"hf:test/{family} pretrained weights from the Hugging Face cache (test/{family})"
    own = {f"{prefix}{k.removeprefix(f'{family}.')}": v for k, v in state.items() if k.startswith(family)}
    params = dict(net.backbone.named_parameters())
    buffers = dict(net.backbone.named_buffers())
    first = next(iter(params))  # the first convolution: filters summed over colour for grey images
    assert params[first].shape[1] == 1 and info.adapted_channels
    assert torch.allclose(params[first], own[first].sum(1, keepdim=True))
    original = transformers.AutoModelForImageClassification.from_pretrained(snapshot).eval()
    assert type(first_conv(net.backbone)[1]) is type(first_conv(original)[1])
    if family != "bit":  # so a grey image gives the features its RGB copy gave (BiT re-standardises)
        grey = torch.rand(2, 1, 32, 32)
        with torch.no_grad():
            rgb = original.base_model(pixel_values=grey.expand(-1, 3, -1, -1)).pooler_output.flatten(1)
            assert torch.allclose(net.backbone.eval()(grey), rgb, atol=1e-5)
    last = [n for n, p in params.items() if p.ndim == 4][-1]  # the last convolution too (randomly initialised)
    assert torch.equal(params[last], own[last])
    running = [n for n in buffers if n.endswith("running_var")]
    assert all(torch.equal(buffers[n], own[n]) for n in running)
    assert running or family in ("convnext", "convnextv2", "bit")  # LayerNorm / GroupNorm families
    assert not any("classifier" in n for n in net.backbone.state_dict())  # the old classifier is gone
    # The preprocessor's statistics (averaged for one channel) and its size; small images grow to 32x32.
    assert info.mean == (pytest.approx(0.4),) and info.std == (pytest.approx(0.2),)
    assert info.recommended_size == (160, 160) and info.resize == (32, 32)
    # Groups: stem, stages, top, head, in the order the parameters run from input to output.
    assert net.block_groups == FAMILIES[family][1]
    in_order = [p for _, names in net.groups for p in names]
    assert in_order == [n for n, _ in net.named_parameters()]
    assert net(torch.rand(2, 1, 16, 16)).shape == (2, 3)


def test_gradual_finetune_keeps_frozen_batchnorm_in_eval_and_reloads_offline(tmp_path):
    hf_cache("test/resnet", "resnet")
    seen: list[tuple[str, bool, bool]] = []

    class Probe:
        def on_step(self, trainer, step, steps, loss, accuracy) -> None:
            model = trainer.model
            stem = model.get_submodule("backbone.model.resnet.embedder.embedder.normalization")
            top = model.get_submodule("backbone.model.resnet.encoder.stages.3.layers.0.shortcut.normalization")
            seen.append((trainer.stage_name, stem.training, top.training))

    run = finetune("hf:test/resnet", tiny_splits(8, shape=(1, 16, 16)), weights="imagenet", strategy="gradual",
                   epochs=6, batch_size=8, out=str(tmp_path), callbacks=[Probe()], log=lambda *a: None,
                   live=False)
    assert run.summary["strategy"] == "gradual" and run.summary["epochs"] == 6
    stages = list(dict.fromkeys(s for s, _, _ in seen))
    assert stages == ["head only", "+ stage4", "+ stage3", "+ stage2", "+ stage1", "+ stem"]
    # Frozen BatchNorm stays in eval (stage4's from the second stage on, the stem's until the last); per stage:
    modes = [{(t1, t2) for s, t1, t2 in seen if s == stage} for stage in stages]
    assert modes == [{(False, False)}] + [{(False, True)}] * 4 + [{(True, True)}]
    model = cnnkit.load(run.run_dir / "best")
    assert isinstance(model, TransferNet) and model.block_groups[0] == "stem"
    _same_outputs(model, run.run_dir / "best", (1, 16, 16))
    # The bundle holds the weights; the structure comes from the cached config.json. Without it: say so.
    shutil.rmtree(hub_cache())
    with pytest.raises(ModelError, match=r"config.json.*https://huggingface.co/test/resnet"):
        cnnkit.load(run.run_dir / "best")


def test_weights_from_a_save_pretrained_folder_a_file_and_hf_folder_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # HF_HUB_CACHE wins over HF_HOME
    torch.manual_seed(4)
    model = transformers.AutoModelForImageClassification.from_config(FAMILIES["convnext"][0]())
    model.save_pretrained(tmp_path / "saved")
    net, info = build_transfer("hf:facebook/convnext-tiny-224", input_shape=(3, 32, 32), num_classes=2,
                               weights=str(tmp_path / "saved"))
    assert str(tmp_path / "saved") in info.loaded and info.mean == (0.485, 0.456, 0.406)
    assert torch.equal(net.backbone.model.convnext.embeddings.patch_embeddings.weight,
                       model.convnext.embeddings.patch_embeddings.weight)
    # The hub name is not cached: the run's bundle must rebuild the structure from the folder's config.
    run = finetune("hf:facebook/convnext-tiny-224", tiny_splits(8, shape=(3, 32, 32)),
                   weights=str(tmp_path / "saved"), strategy="full", epochs=1, batch_size=8,
                   out=str(tmp_path / "runs"), log=lambda *a: None, live=False)
    reloaded = cnnkit.load(run.run_dir / "best")
    assert reloaded.cnnkit_arch.kwargs["base"]["name"] == str((tmp_path / "saved").resolve())
    # A bare .safetensors file: its config.json sits beside it here.
    file = tmp_path / "saved" / "model.safetensors"
    net, info = build_transfer("hf:facebook/convnext-tiny-224", input_shape=(3, 32, 32), num_classes=2,
                               weights=str(file))
    assert str(file) in info.loaded
    assert torch.equal(net.backbone.model.convnext.layernorm.weight, model.convnext.layernorm.weight)
    # The folder itself as the name: the structure rebuilds from it, as cnnkit.load needs.
    made = create_model(f"hf:{tmp_path / 'saved'}", input_shape=(3, 32, 32), num_classes=4, weights="imagenet")
    assert made(torch.rand(2, 3, 32, 32)).shape == (2, 4)
    # Random weights from a cached config (in HF_HUB_CACHE): no preprocessor statistics to follow.
    hf_cache("test/regnet", "regnet", weights=False)
    assert (tmp_path / "elsewhere" / "models--test--regnet").is_dir()
    _, info = build_transfer("hf:test/regnet", input_shape=(3, 32, 32), num_classes=2)
    assert "random weights" in info.loaded and info.mean is None
    with pytest.raises(ModelError, match="not cached"):
        build_transfer("hf:test/regnet", input_shape=(3, 32, 32), num_classes=2, weights="imagenet")


def test_missing_cache_names_url_and_folder_and_the_cli_leaves_no_run(tmp_path, capsys):
    from cnnkit.cli import main

    rc = main(["finetune", "--model", "hf:microsoft/resnet-50", "--weights", "imagenet", "--data", "digits",
               "--limit", "20", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "https://huggingface.co/microsoft/resnet-50" in err
    folder = hub_cache() / "models--microsoft--resnet-50"
    assert f"{folder}/snapshots/<revision>/" in err and f"{folder}/refs/main" in err
    assert "config.json, model.safetensors (or pytorch_model.bin where the repository has no safetensors) and preprocessor_config.json" in err
    assert "huggingface-cli download microsoft/resnet-50" in err
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_non_cnn_models_are_refused_by_name():
    folder = hub_cache() / "models--test--vit" / "snapshots" / "1"
    transformers.ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                           intermediate_size=8).save_pretrained(folder)
    (folder.parent.parent / "refs").mkdir()
    (folder.parent.parent / "refs" / "main").write_text("1")
    with pytest.raises(ModelError, match="'vit' model.*timm"):
        build_transfer("hf:test/vit", input_shape=(3, 32, 32), num_classes=2)


def test_models_lists_well_known_checkpoints(capsys):
    from cnnkit.cli import main

    assert main(["models", "--source", "hf"]) == 0
    out = capsys.readouterr().out
    for name in ("hf:microsoft/resnet-50", "hf:facebook/convnext-tiny-224", "hf:google/mobilenet_v2_1.0_224",
                 "hf:google/efficientnet-b0", "hf:facebook/regnet-y-040"):
        assert name in out
    names = [n for n, _, _ in list_models("google/efficientnet-b*", source="hf", pretrained=True)]
    assert names == [f"hf:google/efficientnet-b{i}" for i in range(8)]
    assert [n for n, _, _ in list_models("hf:microsoft/resnet-5*")] == ["hf:microsoft/resnet-50"]
