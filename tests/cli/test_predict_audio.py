"""`torchdojo predict RUN clip.wav` on an audio run: the saved spectrogram settings rebuild the
model's input, bad clips are reported by name, a spoken-digits run refuses images."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.data.audio import SpectrogramConfig, fix_length, log_mel_spectrogram, read_wav
from torchdojo.models import load_bundle
from torchdojo.recipes import RunOptions, run_recipe
from torchdojo.services.predict import PredictResult, predict_run

runner = CliRunner()
_register_commands()


def write_pcm16(path: Path, samples: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.round(samples * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished spoken-digits smoke run (synthetic chirps)."""
    out = tmp_path_factory.mktemp("runs")
    return Path(
        run_recipe("spoken-digits", RunOptions(smoke=True, out=str(out), progress=False)).run_dir
    )


def test_predict_rebuilds_the_spectrogram_and_reports_bad_clips(
    audio_run: Path, tmp_path: Path
) -> None:
    t = np.arange(4000) / 8000
    for i, freq in enumerate((400.0, 900.0)):
        write_pcm16(tmp_path / f"clip{i}.wav", 0.4 * np.sin(2 * np.pi * freq * t))
    write_pcm16(tmp_path / "fast.wav", 0.4 * np.sin(2 * np.pi * 400 * t), rate=16000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF1234WAVEjunk")
    result = predict_run(audio_run, tmp_path, top_k=2)
    assert isinstance(result, PredictResult)
    assert [Path(p.path).name for p in result.predictions] == ["clip0.wav", "clip1.wav"]
    bad = {Path(b.path).name: b.reason for b in result.bad_files}
    assert set(bad) == {"broken.wav", "fast.wav"} and "16000 Hz" in bad["fast.wav"]
    # the same numbers as the model on the recipe's own pipeline
    model, spec = load_bundle(audio_run)
    cfg = SpectrogramConfig(**spec.preprocess["spectrogram"])
    samples, _ = read_wav(tmp_path / "clip1.wav")
    image = (
        log_mel_spectrogram(fix_length(torch.from_numpy(samples), cfg.clip_samples), cfg)
        - spec.mean[0]
    ) / spec.std[0]
    with torch.no_grad():
        probs = model(image[None, None]).softmax(1)[0]
    top = result.predictions[1]
    assert top.labels[0] == spec.classes[int(probs.argmax())]
    assert top.probs[0] == pytest.approx(float(probs.max()), abs=1e-5)


def test_cli_predict_prints_a_table_for_a_clip(audio_run: Path, tmp_path: Path) -> None:
    clip = write_pcm16(
        tmp_path / "tone.wav", 0.3 * np.sin(2 * np.pi * 600 * np.arange(3000) / 8000)
    )
    result = runner.invoke(app, ["predict", str(audio_run), str(clip)])
    assert result.exit_code == 0, result.output
    assert "tone.wav" in result.output and "%" in result.output
