"""Predict with a finished audio run: sound clips in, top-k classes with probabilities out.

The run's ``model.json`` (task ``"audio-classification"``) stores the sample rate and the
spectrogram settings in ``preprocess``; each clip is read, padded or cropped and turned into
the same normalized log-mel image the model trained on. Unreadable clips, and clips at another
sample rate, are reported in ``bad_files``, never fatal. Reached through
:func:`torchdojo.services.predict.predict_run` (``torchdojo predict RUN clip.wav``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from torchdojo.data.audio import (
    AudioFileError,
    SpectrogramConfig,
    check_rate,
    fix_length,
    log_mel_spectrogram,
    read_wav,
)
from torchdojo.data.image_folder import BadFile
from torchdojo.models import load_bundle
from torchdojo.services.finished import require_finished
from torchdojo.services.predict import Prediction, PredictResult

AUDIO_TASK = "audio-classification"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aif", ".aiff"}  # what libsndfile reads


def audio_files(path: str | Path) -> list[Path]:
    """``path`` itself, or every sound file (by suffix) under the folder ``path``."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a sound file nor a folder")
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


@torch.inference_mode()
def predict_audio(run_dir: str | Path, path: str | Path | None, *, top_k: int = 3) -> PredictResult:
    """Top-``top_k`` classes of every clip at ``path`` (a file or a folder) for an audio run.

    Raises:
        FileNotFoundError: No trained model in ``run_dir``, or ``path`` does not exist.
        ValueError: No path given, the run is not an audio run, or it did not finish.
    """
    if path is None:
        raise ValueError(
            f"nothing to predict: {run_dir} is an audio run; pass a .wav file or a folder"
        )
    require_finished(Path(run_dir), "predict")
    model, spec = load_bundle(run_dir)
    if spec.task != AUDIO_TASK:
        raise ValueError(f"{run_dir} holds a {spec.task} model, not an audio classifier")
    cfg = SpectrogramConfig(**spec.preprocess["spectrogram"])
    mean, std = spec.mean[0], spec.std[0]
    result = PredictResult(str(run_dir), list(spec.classes))
    files, images = [], []
    for file in audio_files(path):
        try:
            samples, rate = read_wav(file)
            check_rate(rate, cfg.sample_rate, file)
        except (AudioFileError, ImportError) as err:
            result.bad_files.append(BadFile(str(file), str(err).split(": ", 1)[-1]))
            continue
        clip = fix_length(torch.from_numpy(samples), cfg.clip_samples)  # (clip_samples,)
        images.append((log_mel_spectrogram(clip, cfg) - mean) / std)  # (n_mels, frames)
        files.append(file)
    if not files:
        return result
    k = max(1, min(top_k, len(spec.classes)))
    logits = torch.cat(
        [model(torch.stack(images[i : i + 64]).unsqueeze(1)) for i in range(0, len(images), 64)]
    )
    probs, index = logits.softmax(dim=1).topk(k, dim=1)  # each (N, k)
    for file, prob, idx in zip(files, probs, index, strict=True):
        labels = [spec.classes[int(i)] for i in idx]
        result.predictions.append(Prediction(str(file), labels, [round(float(p), 6) for p in prob]))
    return result
