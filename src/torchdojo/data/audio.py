"""Sound as tensors: WAV files, log-mel spectrograms, SpecAugment, and the spoken-digit set.

Reading goes through ``soundfile`` (libsndfile; the ``audio`` extra) and falls back to the
standard library's ``wave`` for 16-bit PCM, so no FFmpeg or TorchCodec is ever needed. The
spectrogram is ``torch.stft`` followed by a mel filterbank written here with torchaudio's
defaults (HTK mel scale, no area normalization; Slaney's scale is an option), so it runs on any
torch. The Free Spoken Digit Dataset (FSDD, Jakobovski et al., CC BY-SA 4.0,
https://github.com/Jakobovski/free-spoken-digit-dataset) is 3,000 clips of 6 speakers saying
0-9 at 8 kHz; its official split holds out recordings 0-4 of every digit and speaker.

Taught in lessons/18_audio_as_tensors.py. Recipe: spoken_digits.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from torchdojo.data.arrays import ArrayDataset
from torchdojo.data.errors import DataError
from torchdojo.data.registry import register_dataset

log = logging.getLogger(__name__)

FSDD_RATE = 8000
FSDD_CLASSES = [str(d) for d in range(10)]
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")  # {digit}_{speaker}_{index}.wav
AUDIO_EXTRA = 'pip install "torchdojo[audio]"'
MelScale = Literal["htk", "slaney"]


class AudioFileError(DataError):
    """A sound file that cannot be used; the message names the file and why."""


# ---------------------------------------------------------------- reading WAV files


def read_wav(path: str | Path, *, backend: str = "auto") -> tuple[np.ndarray, int]:
    """The samples of a sound file as mono float32 in [-1, 1], and its sample rate.

    Args:
        path: The file.
        backend: ``"soundfile"`` (any format libsndfile reads), ``"wave"`` (standard library,
            16-bit PCM WAV only) or ``"auto"`` (soundfile when installed, else wave).

    Raises:
        AudioFileError: The file is missing, corrupt, empty or in a format the backend cannot
            read; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if backend not in {"auto", "soundfile", "wave"}:
        raise ValueError(f"backend={backend!r}: use auto, soundfile or wave")
    if backend == "wave" or (backend == "auto" and not _has_soundfile()):
        samples, rate = _read_with_wave(path)
    else:
        samples, rate = _read_with_soundfile(path)
    if samples.size == 0:
        raise AudioFileError(f"{path}: holds no samples (an empty recording)")
    return samples, rate


def _has_soundfile() -> bool:
    try:
        import soundfile  # noqa: F401
    except ImportError:
        return False
    return True


def _read_with_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError:
        raise ImportError(
            f"reading {path.name} with soundfile needs the audio extra: {AUDIO_EXTRA}"
        ) from None
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (L, channels)
    except (RuntimeError, TypeError, ValueError) as err:  # LibsndfileError is a RuntimeError
        raise AudioFileError(f"{path}: not a readable sound file ({err})") from None
    return data.mean(axis=1), int(rate)


def _read_with_wave(path: Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            frames = f.getnframes()
            raw = f.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise AudioFileError(
            f"{path}: not a readable WAV file ({err}); the standard-library reader takes "
            f"16-bit PCM only, soundfile reads more: {AUDIO_EXTRA}"
        ) from None
    if width != 2:
        raise AudioFileError(
            f"{path}: {8 * width}-bit samples; the standard-library reader takes 16-bit PCM "
            f"only, install soundfile for other formats: {AUDIO_EXTRA}"
        )
    if len(raw) < frames * channels * width:
        raise AudioFileError(
            f"{path}: truncated, the header says {frames} frames but only "
            f"{len(raw) // (channels * width)} are there"
        )
    data = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)  # (L, channels)
    return (data.astype(np.float32) / 32768.0).mean(axis=1), rate


def check_rate(rate: int, expected: int, path: str | Path) -> None:
    """Refuse a clip whose sample rate is not the one the spectrogram settings assume."""
    if rate != expected:
        raise AudioFileError(
            f"{path}: sampled at {rate} Hz, but this model reads {expected} Hz audio; resample "
            f"it first, e.g. `sox in.wav -r {expected} out.wav` or `ffmpeg -i in.wav -ar "
            f"{expected} out.wav`"
        )


# ---------------------------------------------------------------- the mel filterbank


def hz_to_mel(freq: Tensor, scale: MelScale = "htk") -> Tensor:
    """Mels of frequencies in Hz: HTK ``2595 log10(1 + f/700)``, or Slaney's (linear below
    1 kHz at 3/200 mel per Hz, logarithmic above)."""
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    linear = freq * 3.0 / 200.0
    log_part = 15.0 + torch.log(freq.clamp_min(1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(freq >= 1000.0, log_part, linear)


def mel_to_hz(mel: Tensor, scale: MelScale = "htk") -> Tensor:
    """Frequencies in Hz of mels: the inverse of :func:`hz_to_mel`."""
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * 200.0 / 3.0
    log_part = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    *,
    n_freqs: int,
    n_mels: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: MelScale = "htk",
    norm: Literal["slaney"] | None = None,
) -> Tensor:
    """Triangular mel filters, (n_mels, n_freqs): row m rises from centre m-1 to a peak of 1 at
    centre m and falls to centre m+1, the ``n_mels + 2`` centres evenly spaced in mels.

    The same construction as torchaudio's ``melscale_fbanks`` (transposed); ``norm="slaney"``
    divides each triangle by its width in Hz so that all have the same area (librosa's default).

    Args:
        n_freqs: STFT frequency bins, ``n_fft // 2 + 1``, spread evenly over 0..rate/2.
        n_mels: Mel bands.
        sample_rate: Samples per second.
        f_min: Lowest edge in Hz.
        f_max: Highest edge in Hz (None: the Nyquist frequency ``sample_rate / 2``).
        scale: ``"htk"`` or ``"slaney"`` mel scale.
        norm: None (peaks of 1) or ``"slaney"`` (equal area).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= rate/2 = {sample_rate / 2:g} Hz; "
            f"got f_min={f_min:g}, f_max={f_max:g}"
        )
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (F,)
    edges = torch.tensor([f_min, f_max], dtype=torch.float64)
    low, high = hz_to_mel(edges, scale).tolist()
    mels = torch.linspace(low, high, n_mels + 2, dtype=torch.float64)
    points = mel_to_hz(mels, scale)  # (n_mels + 2,) centres in Hz, ends included
    widths = points.diff()  # (n_mels + 1,)
    slopes = points[None, :] - freqs[:, None]  # (F, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]  # (F, n_mels): 0 at the left edge, 1 at the centre
    falling = slopes[:, 2:] / widths[1:]  # (F, n_mels): 1 at the centre, 0 at the right edge
    bank = torch.clamp(torch.minimum(rising, falling), min=0.0).T  # (n_mels, F)
    if norm == "slaney":
        bank = bank * (2.0 / (points[2:] - points[:-2]))[:, None]
    empty = (bank.amax(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"mel bands {empty} fall between STFT bins ({n_freqs} bins for {n_mels} mels); "
            "use fewer n_mels or a larger n_fft"
        )
    return bank.float()


# ---------------------------------------------------------------- log-mel spectrograms


@dataclass(frozen=True)
class SpectrogramConfig:
    """How a clip becomes a fixed-size log-mel image; saved with a model so ``predict`` can
    rebuild it (:meth:`to_dict`).

    Args:
        sample_rate: Samples per second the clips must have.
        clip_samples: Every clip is padded (centred) or cropped (loudest window) to this length.
        n_fft: STFT size; the Hann window has the same length (32 ms at 8 kHz).
        hop_length: Samples between frames (10 ms at 8 kHz).
        n_mels: Mel bands.
        f_min: Lowest mel edge in Hz.
        f_max: Highest mel edge in Hz (None: Nyquist).
        mel_scale: ``"htk"`` (torchaudio's default) or ``"slaney"`` (librosa's).
    """

    sample_rate: int = FSDD_RATE
    clip_samples: int = FSDD_RATE  # 1 s: 99.3 % of FSDD clips are shorter
    n_fft: int = 256
    hop_length: int = 80
    n_mels: int = 40
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: MelScale = "htk"

    @property
    def frames(self) -> int:
        """Time frames of one spectrogram (``center=True`` adds one)."""
        return 1 + self.clip_samples // self.hop_length

    def to_dict(self) -> dict[str, object]:
        """The settings as JSON-able values (what ``ModelSpec.preprocess`` stores)."""
        return dataclasses.asdict(self)


def fix_length(samples: Tensor, length: int) -> Tensor:
    """A 1-D clip padded with silence on both sides, or cropped to its loudest window."""
    n = samples.shape[-1]
    if n < length:
        left = (length - n) // 2
        return torch.nn.functional.pad(samples, (left, length - n - left))
    if n == length:
        return samples
    energy = torch.cat([samples.new_zeros(1), samples.square().cumsum(0)])  # (n + 1,)
    window_energy = energy[length:] - energy[:-length]  # (n - length + 1,)
    start = int(window_energy.argmax())
    return samples[start : start + length]


def log_mel_spectrogram(waves: Tensor, cfg: SpectrogramConfig) -> Tensor:
    """Log-mel spectrograms of equal-length clips: (..., L) -> (..., n_mels, frames).

    Power STFT (Hann window, ``center=True`` with reflection), mel filterbank, then
    ``log(mel + 1e-6)``: the floor keeps silence finite (about -13.8).
    """
    shape = waves.shape[:-1]
    flat = waves.reshape(-1, waves.shape[-1]).float()  # (N, L)
    window = torch.hann_window(cfg.n_fft, device=flat.device)
    stft = torch.stft(
        flat, cfg.n_fft, cfg.hop_length, window=window, center=True, return_complex=True
    )  # (N, n_fft // 2 + 1, frames)
    power = stft.abs().square()
    bank = mel_filterbank(
        n_freqs=cfg.n_fft // 2 + 1,
        n_mels=cfg.n_mels,
        sample_rate=cfg.sample_rate,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
        scale=cfg.mel_scale,
    ).to(flat.device)
    mel = bank @ power  # (N, n_mels, frames)
    return torch.log(mel + 1e-6).reshape(*shape, cfg.n_mels, -1)


def clips_to_log_mel(clips: list[np.ndarray], cfg: SpectrogramConfig, chunk: int = 500) -> Tensor:
    """Fixed-length log-mel spectrograms of 1-D clips, (N, 1, n_mels, frames) float32."""
    out = []
    for start in range(0, len(clips), chunk):
        waves = torch.stack(
            [
                fix_length(torch.from_numpy(c), cfg.clip_samples)
                for c in clips[start : start + chunk]
            ]
        )  # (chunk, L)
        out.append(log_mel_spectrogram(waves, cfg).unsqueeze(1))  # (chunk, 1, n_mels, frames)
    return torch.cat(out)


# ---------------------------------------------------------------- SpecAugment


class SpecAugment:
    """Seeded time and frequency masking (Park et al., 2019, https://arxiv.org/abs/1904.08779).

    Each call masks, per example, ``freq_masks`` bands of up to ``freq_width`` mel rows and
    ``time_masks`` stripes of up to ``time_width`` frames with 0, which is the mean of a
    normalized spectrogram. Masks come from a generator seeded once: the same seed and batches
    give the same masks (a resumed run draws new ones).

    Args:
        freq_masks: Frequency masks per example.
        freq_width: Widest frequency mask, in mel bands.
        time_masks: Time masks per example.
        time_width: Widest time mask, in frames.
        seed: Seeds the masks.
    """

    def __init__(
        self,
        *,
        freq_masks: int = 2,
        freq_width: int = 6,
        time_masks: int = 2,
        time_width: int = 12,
        seed: int = 0,
    ) -> None:
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: Tensor) -> Tensor:
        """Masked copy of a batch of spectrograms (B, C, n_mels, frames)."""
        B, _, F, T = x.shape
        keep = self._stripes(B, F, self.freq_masks, self.freq_width)[:, None, :, None]  # (B,1,F,1)
        keep = keep & self._stripes(B, T, self.time_masks, self.time_width)[:, None, None, :]
        return x * keep.to(x.device, x.dtype)  # (B, C, F, T)

    def _stripes(self, batch: int, size: int, count: int, width: int) -> Tensor:
        """(batch, size) bool: False inside ``count`` random stripes of width 0..width."""
        keep = torch.ones(batch, size, dtype=torch.bool)
        positions = torch.arange(size)
        for _ in range(count):
            w = torch.randint(0, width + 1, (batch, 1), generator=self.generator)  # (B, 1)
            start = (torch.rand(batch, 1, generator=self.generator) * (size - w + 1)).long()
            keep &= (positions < start) | (positions >= start + w)
        return keep


# ---------------------------------------------------------------- the spoken-digit set


@dataclass(frozen=True)
class Clips:
    """Spectrograms of a set of clips with their labels, speakers and recording indices."""

    x: Tensor  # (N, 1, n_mels, frames) log-mel, not normalized
    y: Tensor  # (N,) digit
    speakers: tuple[str, ...]
    indices: tuple[int, ...]
    source: str
    bad_files: tuple[str, ...] = ()


def fsdd_folder(data_dir: str | Path) -> Path:
    """Where the FSDD recordings live under a data root (``fsdd/recordings``, or the folder of a
    git clone, ``free-spoken-digit-dataset/recordings``); raises a message saying where to put
    them when neither exists."""
    root = Path(data_dir).expanduser()
    for folder in (root / "fsdd" / "recordings", root / "free-spoken-digit-dataset" / "recordings"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"no FSDD recordings under {root}: put the 3,000 WAV files in "
        f"{root / 'fsdd' / 'recordings'} (git clone {FSDD_URL}), or use dataset=fsdd-tiny"
    )


@cache
def read_fsdd(folder: Path, cfg: SpectrogramConfig, max_bad_fraction: float = 0.01) -> Clips:
    """Every clip of an FSDD folder as log-mel spectrograms, computed once per process.

    Files whose names do not read ``{digit}_{speaker}_{index}.wav``, and files that cannot be
    read, are skipped and named in a warning; more than ``max_bad_fraction`` of them stops.
    """
    clips, digits, speakers, indices, bad = [], [], [], [], []
    for path in sorted(folder.glob("*.wav")):
        match = FSDD_NAME.match(path.name)
        if match is None:
            bad.append(f"{path.name} (not named digit_speaker_index.wav)")
            continue
        try:
            samples, rate = read_wav(path)
            check_rate(rate, cfg.sample_rate, path)
        except AudioFileError as err:
            bad.append(f"{path.name} ({str(err).split(': ', 1)[-1]})")
            continue
        clips.append(samples)
        digits.append(int(match[1]))
        speakers.append(match[2])
        indices.append(int(match[3]))
    total = len(clips) + len(bad)
    if not clips or len(bad) > max_bad_fraction * total:
        raise ValueError(
            f"{folder}: {len(bad)} of {total} WAV files are unusable (first: "
            f"{'; '.join(bad[:3]) or 'no WAV files at all'}); fix or remove them"
        )
    if bad:
        log.warning("skipped %d unusable file(s) in %s: %s", len(bad), folder, "; ".join(bad))
    return Clips(
        clips_to_log_mel(clips, cfg),
        torch.tensor(digits),
        tuple(speakers),
        tuple(indices),
        f"FSDD ({folder})",
        tuple(bad),
    )


def synthetic_digits(cfg: SpectrogramConfig, *, per_class: int = 30, seed: int = 0) -> Clips:
    """``fsdd-tiny``: seeded chirps standing in for spoken digits, generated in code.

    Digit d glides from ``f0 = 300 + 350 (d mod 5)`` Hz up (d < 5) or down (d >= 5) by an octave
    over a random 0.25-0.8 s, with a harmonic, noise and a random loudness that says nothing
    about the class: digits d and d + 5 share their frequencies and differ only in direction.
    Three "speakers" (a, b, c) shift the pitch by 0.9, 1.0 and 1.1 times; recording indices run
    0..per_class-1 as in FSDD, so both split protocols work.
    """
    rng = np.random.default_rng(seed)
    rate, clips, digits, speakers, indices = cfg.sample_rate, [], [], [], []
    for digit in range(10):
        for index in range(per_class):
            speaker = "abc"[index % 3]
            pitch = {"a": 0.9, "b": 1.0, "c": 1.1}[speaker] * rng.uniform(0.95, 1.05)
            f0 = (300.0 + 350.0 * (digit % 5)) * pitch
            f1 = f0 * (2.0 if digit < 5 else 0.5)
            seconds = rng.uniform(0.25, 0.8)
            t = np.arange(int(seconds * rate)) / rate
            freq = f0 * (f1 / f0) ** (t / seconds)  # exponential glide, Hz per sample
            phase = 2 * np.pi * np.cumsum(freq) / rate
            tone = np.sin(phase) + 0.3 * np.sin(2 * phase) * (2 * f1 < rate / 2)
            envelope = np.sin(np.pi * t / seconds)  # fade in and out
            clip = rng.uniform(0.05, 0.9) * envelope * tone + rng.normal(0, 0.01, len(t))
            clips.append(clip.astype(np.float32))
            digits.append(digit)
            speakers.append(speaker)
            indices.append(index)
    x = clips_to_log_mel(clips, cfg)
    source = f"fsdd-tiny: {len(clips)} synthetic chirps (seed {seed})"
    return Clips(x, torch.tensor(digits), tuple(speakers), tuple(indices), source)


def split_clips(clips: Clips, split: str = "official") -> tuple[ArrayDataset, ArrayDataset]:
    """Train and test sets of ``clips`` under a protocol, normalized with the train mean/std.

    Args:
        clips: From :func:`read_fsdd` or :func:`synthetic_digits`.
        split: ``"official"`` (recording index 0-4 is test, the rest train) or
            ``"speaker:<name>"`` (that speaker is test, the others train).
    """
    speakers = sorted(set(clips.speakers))
    if split == "official":
        test = torch.tensor([i < 5 for i in clips.indices])
        what = "official split (recordings 0-4 test)"
    elif split.startswith("speaker:") and split[len("speaker:") :] in speakers:
        name = split[len("speaker:") :]
        test = torch.tensor([s == name for s in clips.speakers])
        what = f"speaker {name} held out"
    else:
        choices = ", ".join(f"speaker:{s}" for s in speakers)
        raise ValueError(f"split={split!r}: use official or one of {choices}")
    x_train, x_test = clips.x[~test], clips.x[test]
    mean, std = float(x_train.mean()), float(x_train.std())
    parts = []
    for x, y, name in ((x_train, clips.y[~test], "train"), (x_test, clips.y[test], "test")):
        source = f"{clips.source}, {what}: {name} {len(y)} clips"
        if clips.bad_files:
            source += f" ({len(clips.bad_files)} unusable files skipped)"
        parts.append(ArrayDataset((x - mean) / std, y, list(FSDD_CLASSES), source, (mean,), (std,)))
    return parts[0], parts[1]


def load_fsdd(
    data_dir: str | Path | None,
    split: str = "official",
    *,
    spectrogram: SpectrogramConfig | None = None,
    synthetic: bool = False,
) -> tuple[ArrayDataset, ArrayDataset]:
    """FSDD (or its synthetic stand-in) as normalized log-mel train and test sets.

    Args:
        data_dir: The data root holding ``fsdd/recordings`` (unused when ``synthetic``).
        split: ``"official"`` or ``"speaker:<name>"`` (see :func:`split_clips`).
        spectrogram: The spectrogram settings (default :class:`SpectrogramConfig`).
        synthetic: Use the ``fsdd-tiny`` chirps instead of the recordings.
    """
    cfg = spectrogram or SpectrogramConfig()
    if synthetic:
        train, test = split_clips(_synthetic_cached(cfg), split)
        train.reference = test.reference = False
        return train, test
    from torchdojo.utils.paths import data_root

    return split_clips(read_fsdd(fsdd_folder(data_root(data_dir)), cfg), split)


@cache
def _synthetic_cached(cfg: SpectrogramConfig) -> Clips:
    return synthetic_digits(cfg)


@register_dataset("fsdd")
def _fsdd(
    split: str, *, root: str | Path | None = None, protocol: str = "official"
) -> ArrayDataset:
    """FSDD's train or test set under ``protocol`` (official | speaker:<name>)."""
    train, test = load_fsdd(root, protocol)
    return train if split == "train" else test


@register_dataset("fsdd-tiny")
def _fsdd_tiny(
    split: str, *, root: str | Path | None = None, protocol: str = "official"
) -> ArrayDataset:
    """300 synthetic chirps (250 train / 50 test, official protocol), generated offline."""
    train, test = load_fsdd(root, protocol, synthetic=True)
    return train if split == "train" else test
