"""The feature extractor with a scikit-learn head: backbone embeddings computed once and cached,
a logistic regression or linear SVM fitted on them and folded into the head's dense layer."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..data.dataset import DataSplits
from ..data.loader import TensorLoader
from ..data.sources import cnnkit_home
from ..fileio import atomic_path
from ..models.adapt import TransferNet


def _fingerprint(model: nn.Module, data: DataSplits) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for split in (data.train, data.val, data.test):
        h.update(split.images.numpy().tobytes())
        h.update(split.labels.numpy().tobytes())
    h.update(repr((data.mean, data.std)).encode())
    return h.hexdigest()[:24]


@torch.no_grad()
def embeddings(model: TransferNet, data: DataSplits, device: torch.device, log=print) -> dict[str, torch.Tensor]:
    """Backbone features of every split, cached in $CNNKIT_HOME/embeddings/<fingerprint>.safetensors."""
    from safetensors.torch import load_file
    from safetensors.torch import save as safetensors_bytes

    path = cnnkit_home() / "embeddings" / f"{_fingerprint(model, data)}.safetensors"
    if path.is_file():
        log(f"embeddings: reusing the cached {path}")
        return load_file(str(path))
    model.eval()
    out = {}
    for split_name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        loader = TensorLoader(split, batch_size=256, mean=data.mean, std=data.std, device=device)
        feats, labels = [], []
        for x, y in loader:
            feats.append(model.forward_features(x).float().cpu())
            labels.append(y.cpu())
        out[f"{split_name}_x"], out[f"{split_name}_y"] = torch.cat(feats), torch.cat(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = safetensors_bytes({k: v.contiguous() for k, v in out.items()})  # written by Python: a full
    with atomic_path(path, needed=len(blob)) as tmp:  # disk is then a DiskFullError (fileio.atomic_path)
        tmp.write_bytes(blob)
    log(f"embeddings: {len(out['train_x']):,} x {out['train_x'].shape[1]} features cached in {path}")
    return out


def head_linear(model: TransferNet) -> nn.Linear:
    """The dense layer that makes the logits (the last Linear of the head)."""
    return [m for m in model.head.modules() if isinstance(m, nn.Linear)][-1]


def fit_sklearn_head(model: TransferNet, emb: dict[str, torch.Tensor], kind: str, seed: int) -> float:
    """Fit logistic regression / a linear SVM on standardised embeddings; fold it into the head. Val accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    x, y = emb["train_x"].double().numpy(), emb["train_y"].numpy()
    mu, sigma = x.mean(0), x.std(0) + 1e-6
    clf = (LogisticRegression(max_iter=2000, C=1.0, random_state=seed) if kind == "logistic"
           else LinearSVC(C=0.1, max_iter=5000, random_state=seed))
    clf.fit((x - mu) / sigma, y)
    head = head_linear(model)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # two classes: one decision function -> two logits
        coef, intercept = torch.cat([torch.tensor(-coef), torch.tensor(coef)]).numpy() / 2, \
            torch.tensor([-intercept[0], intercept[0]]).numpy() / 2
    weight = torch.tensor(coef / sigma, dtype=torch.float32)
    bias = torch.tensor(intercept - (coef * mu / sigma).sum(1), dtype=torch.float32)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    logits = emb["val_x"] @ weight.T + bias
    return float((logits.argmax(1) == emb["val_y"]).float().mean())
