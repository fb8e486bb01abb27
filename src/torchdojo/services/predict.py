"""Predict with a finished classification run: images (or texts) in, classes with probabilities out.

``predict(run_dir, path)`` rebuilds the run's model from ``model.json`` + ``model.safetensors``,
prepares each image the way the run evaluated it, and returns the softmax top-k. A folder is
searched recursively; an unreadable file is reported in ``bad_files``, never fatal. A run
that did not finish is refused (its model is not the trained one). Used by
``torchdojo predict``.

Text runs (``model.json`` task ``"text-classification"``) go through :func:`predict_texts`:
the run's saved tokenizer encodes the texts, the model gives logits and, when it has
``token_attention``, each token's weight; :func:`predict_run` picks the path from the run's task.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2

from torchdojo.data.image_folder import BadFile, describe_error, is_image_file
from torchdojo.data.transforms import eval_transforms, load_image_rgb
from torchdojo.export.card import SMALL_INPUT
from torchdojo.models import ModelSpec, load_bundle
from torchdojo.services.finished import require_finished
from torchdojo.utils import atomic_write_text

if TYPE_CHECKING:
    from torchdojo.export.text_predictor import TextPrediction
    from torchdojo.utils.textcodec import TextCodec

# Inputs at least this large were trained on resize + center crop (image folders); smaller
# ones (MNIST 28 px, CIFAR 32 px) on whole images, so those are resized whole. Export's model
# card follows the same rule, so served and local predictions agree.
CROP_MIN_SIZE = SMALL_INPUT


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, most probable first."""

    path: str
    labels: list[str]
    probs: list[float]


@dataclass
class PredictResult:
    """Every prediction, the files that could not be read, and the run's classes."""

    run_dir: str
    classes: list[str]
    predictions: list[Prediction] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)


def image_transform(spec: ModelSpec) -> Callable[[Image.Image], Tensor]:
    """The eval transform of a run's model: RGB image in, normalized (C, H, W) tensor out.

    Grayscale models (``input_shape[0] == 1``) get the image as luminance; inputs under
    ``CROP_MIN_SIZE`` pixels are resized whole, larger ones resized and center-cropped.
    """
    if len(spec.input_shape) != 3:
        raise ValueError(f"model input_shape {spec.input_shape} is not an image (C, H, W)")
    channels, height, width = spec.input_shape
    if channels == 3 and min(height, width) >= CROP_MIN_SIZE and height == width:
        return eval_transforms(image_size=height, mean=spec.mean, std=spec.std)
    steps: list[v2.Transform] = [v2.Grayscale(1)] if channels == 1 else []
    steps += [
        v2.ToImage(),
        v2.Resize((height, width), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ]
    return v2.Compose(steps)


def image_files(path: str | Path) -> list[Path]:
    """``path`` itself, or every file with an image extension under the folder ``path``."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    return sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))


@torch.inference_mode()
def predict(
    run_dir: str | Path, path: str | Path, *, top_k: int = 3, batch_size: int = 32
) -> PredictResult:
    """Top-``top_k`` classes of every image at ``path`` (a file or a folder) for a run's model.

    Args:
        run_dir: A finished classification run folder (holds ``model.json``).
        path: An image file or a folder searched recursively for images.
        top_k: Classes per image (capped at the number of classes).
        batch_size: Images per forward pass.

    Raises:
        FileNotFoundError: No trained model in ``run_dir``, or ``path`` does not exist.
        ValueError: The run's model is not an image classifier, or the run did not finish.
    """
    require_finished(Path(run_dir), "predict")
    model, spec = load_bundle(run_dir)
    if spec.task != "classification" or not spec.classes:
        raise ValueError(f"{run_dir} holds a {spec.task} model; predict needs a classifier")
    transform = image_transform(spec)
    result = PredictResult(str(run_dir), list(spec.classes))
    k = max(1, min(top_k, len(spec.classes)))
    batch: list[tuple[Path, Tensor]] = []
    for file in image_files(path):
        try:
            batch.append((file, transform(load_image_rgb(file))))
        except Exception as exc:  # any decode failure: report it, go on with the rest
            result.bad_files.append(BadFile(str(file), describe_error(exc, file)))
        if len(batch) == batch_size:
            result.predictions += _predict_batch(model, batch, spec.classes, k)
            batch = []
    if batch:
        result.predictions += _predict_batch(model, batch, spec.classes, k)
    return result


def _predict_batch(
    model: torch.nn.Module, batch: list[tuple[Path, Tensor]], classes: Sequence[str], k: int
) -> list[Prediction]:
    x = torch.stack([image for _, image in batch])  # (B, C, H, W)
    probs, index = model(x).softmax(dim=1).topk(k, dim=1)  # each (B, k)
    return [
        Prediction(str(file), [classes[int(i)] for i in idx], [round(float(p), 6) for p in prob])
        for (file, _), prob, idx in zip(batch, probs, index, strict=True)
    ]


def write_predictions(result: PredictResult, path: str | Path) -> Path:
    """Write ``result`` as ``.json`` or ``.csv`` (by suffix); bad files get an ``error`` row."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        doc = {
            "run_dir": result.run_dir,
            "classes": result.classes,
            "predictions": [asdict(p) for p in result.predictions],
            "bad_files": [asdict(b) for b in result.bad_files],
        }
        return atomic_write_text(path, json.dumps(doc, indent=2))
    if path.suffix.lower() != ".csv":
        raise ValueError(f"--output {path}: use a .csv or .json file name")
    k = max((len(p.labels) for p in result.predictions), default=1)
    header = ["path"] + [f"{kind}_{i}" for i in range(1, k + 1) for kind in ("label", "prob")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*header, "error"])
    for p in result.predictions:
        cells = [c for pair in zip(p.labels, p.probs, strict=True) for c in pair]
        writer.writerow([p.path, *cells, *[""] * (2 * k - len(cells)), ""])
    for bad in result.bad_files:
        writer.writerow([bad.path, *[""] * (2 * k), bad.reason])
    return atomic_write_text(path, buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# Text runs: sentences in, label, probabilities and per-token attention out

TEXT_TASK = "text-classification"
TEXT_FILES = (".txt", ".csv", ".tsv")


@dataclass
class TextPredictResult:
    """Every text's prediction, and the run's classes."""

    run_dir: str
    classes: list[str]
    predictions: list[TextPrediction] = field(default_factory=list)

    @property
    def has_attention(self) -> bool:
        """Whether the model gave per-token attention (``token_attention``)."""
        return any(p.attention is not None for p in self.predictions)


def run_task(run_dir: str | Path) -> str:
    """The task saved in ``run_dir/model.json`` (``"classification"`` when it says none)."""
    spec_file = Path(run_dir) / "model.json"
    if not spec_file.is_file():  # load_bundle's own message says what to pass
        return "classification"
    return str(json.loads(spec_file.read_text(encoding="utf-8")).get("task", "classification"))


def predict_run(
    run_dir: str | Path,
    path: str | Path | None = None,
    *,
    texts: Sequence[str] = (),
    top_k: int = 3,
    text_column: str | None = None,
) -> PredictResult | TextPredictResult:
    """Predict with any finished classification run: images for image runs, texts for text runs.

    Args:
        run_dir: A finished run folder.
        path: Image runs: an image or a folder. Text runs: a ``.txt`` file (one text per
            line) or a ``.csv`` / ``.tsv`` file with a header (the text column).
        texts: Text runs: texts given directly (``--text``).
        top_k: Image runs: classes per image.
        text_column: Text runs: the CSV/TSV column holding the texts (found by name if None).

    Raises:
        ValueError: The input does not fit the run (an image for a text run, or text for an
            image run), or nothing to predict.
    """
    if run_task(run_dir) == "audio-classification" and not texts:  # sound clips
        from torchdojo.services.predict_audio import predict_audio

        return predict_audio(run_dir, path, top_k=top_k)
    task = run_task(run_dir)
    if task != TEXT_TASK:
        if texts:
            kind = "an image classifier" if task == "classification" else f"a {task} model"
            raise ValueError(
                f"--text is for text runs, and {run_dir} holds {kind}; pass its kind of input "
                "file (an image or a folder of images for an image classifier) instead"
            )
        if path is None:
            raise ValueError("nothing to predict: pass an image file or a folder of images")
        return predict(run_dir, path, top_k=top_k)
    given = list(texts)
    if path is not None:
        given += read_texts(path, text_column=text_column, run_dir=run_dir)
    if not given:
        raise ValueError(
            f'nothing to predict: {run_dir} is a text run; pass --text "a sentence" or a '
            ".txt/.csv/.tsv file"
        )
    return predict_texts(run_dir, given)


def read_texts(
    path: str | Path, *, text_column: str | None = None, run_dir: str | Path = "the run"
) -> list[str]:
    """The texts of a ``.txt`` file (one per non-empty line) or a CSV/TSV file's text column.

    Raises:
        ValueError: Another kind of file (e.g. an image), a file that is not UTF-8 (names the
            line), or a table without a recognisable text column.
    """
    from torchdojo.data.text import TEXT_COLUMNS, decode_utf8, find_column

    path = Path(path).expanduser()
    if path.suffix.lower() not in TEXT_FILES or not path.is_file():
        what = "a folder" if path.is_dir() else f"not a {'/'.join(TEXT_FILES)} file"
        if not path.exists():
            what = "missing"
        raise ValueError(
            f'{path} is {what}: {run_dir} is a text-classification run; pass --text "a '
            'sentence" or a .txt file (one text per line) or a .csv/.tsv file with a text column'
        )
    content = decode_utf8(path)
    if path.suffix.lower() == ".txt":
        return [line.strip() for line in content.splitlines() if line.strip()]
    lines = io.StringIO(content, newline="")
    if path.suffix.lower() == ".tsv":  # a quote is text in a TSV, as the text recipes read it
        rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    else:
        rows = list(csv.reader(lines))
    if not rows:
        raise ValueError(f"{path} is empty; it needs a header row and one text per row")
    header = [h.strip() for h in rows[0]]
    at = header.index(find_column(path, header, text_column, TEXT_COLUMNS, "text"))
    return [row[at].strip() for row in rows[1:] if len(row) > at and row[at].strip()]


def load_codec(run_dir: str | Path, spec: ModelSpec) -> TextCodec:
    """The run's :class:`TextCodec`: ``textcodec.json`` + ``tokenizer.json``, or the tokenizer
    file that ``model.json``'s ``preprocess`` names with its ``max_length``."""
    from torchdojo.utils.textcodec import CODEC_FILE, TextCodec

    run_dir = Path(run_dir)
    if (run_dir / CODEC_FILE).is_file():
        return TextCodec.load(run_dir)
    from tokenizers import Tokenizer

    settings = spec.preprocess
    file = run_dir / str(settings.get("tokenizer", "tokenizer.json"))
    if not file.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no {file.name}: a text run saves its tokenizer beside model.json"
        )
    max_length = int(settings.get("max_length") or spec.input_shape[0])
    return TextCodec(Tokenizer.from_file(str(file)), max_length, settings.get("pretokenize"))


@torch.inference_mode()
def predict_texts(
    run_dir: str | Path, texts: Sequence[str], *, batch_size: int = 32
) -> TextPredictResult:
    """Label, probabilities, tokens and (if the model has it) attention of each text.

    Args:
        run_dir: A finished text-classification run folder.
        texts: The texts to classify.
        batch_size: Texts per forward pass.

    Raises:
        ValueError: The run is not a finished text classifier.
    """
    from torchdojo.export.text_predictor import describe_texts

    require_finished(Path(run_dir), "predict")
    model, spec = load_bundle(run_dir)
    if spec.task != TEXT_TASK or not spec.classes:
        raise ValueError(f"{run_dir} holds a {spec.task} model, not a text classifier")
    codec = load_codec(run_dir, spec)
    result = TextPredictResult(str(run_dir), list(spec.classes))
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        encoded = codec.encode(batch)
        ids = torch.from_numpy(encoded["input_ids"])  # (B, T)
        mask = torch.from_numpy(encoded["attention_mask"])  # (B, T)
        logits = model(ids, mask).float().numpy()  # (B, C)
        attention = None
        token_attention = getattr(model, "token_attention", None)
        if callable(token_attention):
            attention = token_attention(ids, mask).float().numpy()  # (B, T)
        result.predictions += describe_texts(batch, codec, logits, attention, spec.classes)
    return result


def write_text_predictions(result: TextPredictResult, path: str | Path) -> Path:
    """Write text predictions as ``.json`` or ``.csv`` (by suffix): text, label, probabilities,
    tokens and attention (space-separated in the CSV)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        doc = {
            "run_dir": result.run_dir,
            "classes": result.classes,
            "predictions": [asdict(p) for p in result.predictions],
        }
        return atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False))
    if path.suffix.lower() != ".csv":
        raise ValueError(f"--output {path}: use a .csv or .json file name")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["text", "label", "prob", *[f"prob_{c}" for c in result.classes], "tokens"] + ["attention"]
    )
    for p in result.predictions:
        weights = "" if p.attention is None else " ".join(f"{w:.4f}" for w in p.attention)
        probs = [p.probs[c] for c in result.classes]
        writer.writerow([p.text, p.label, p.probability, *probs, " ".join(p.tokens), weights])
    return atomic_write_text(path, buffer.getvalue())


def write_attention_page(result: TextPredictResult, path: str | Path) -> Path:
    """Write an HTML page colouring each text's tokens by the model's attention.

    Raises:
        ValueError: The model has no ``token_attention`` (nothing to colour).
    """
    from torchdojo.viz.attention import AttentionExample, attention_page

    if not result.has_attention:
        raise ValueError(
            f"--html needs a model with token attention (text-transformer, minilm); the model of "
            f"{result.run_dir} has none: drop --html"
        )
    examples = [
        AttentionExample(p.tokens, p.attention or [], p.label, p.probability)
        for p in result.predictions
    ]
    run = Path(result.run_dir)
    title = f"Attention: {run.parent.name}/{run.name}"  # e.g. text-classifier/20260101-120000
    return atomic_write_text(Path(path), attention_page(examples, title=title))
