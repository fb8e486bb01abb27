# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 18 · Audio as tensors: sampling, the STFT, the mel scale
#
# A sound file is a 1-D tensor of pressure samples. To classify it with the image tools of
# the earlier lessons we turn it into a picture of which frequencies sound when: a log-mel
# spectrogram. Every step here is a few lines of `torch`, and every claim is checked.
#
# **You will learn**
# - sampling and the Nyquist limit: why a tone above half the sample rate turns into another;
# - the discrete Fourier transform of a pure tone, and Parseval's energy identity;
# - the short-time Fourier transform (window, hop) and its time/frequency trade-off;
# - the mel scale and a triangular mel filterbank, written by hand;
# - log compression (loudness becomes an offset) and SpecAugment masking.
#
# Data: a real Free Spoken Digit Dataset clip from `$TORCHDOJO_DATA/fsdd/recordings` when
# present; otherwise a synthetic vowel-like tone. Recipe: `spoken-digits`. Seed: 000 ch8
# (its torchaudio transforms are rebuilt here on `torch.stft`; see docs/crosswalk.md).

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from torchdojo.data.audio import (
    SpecAugment,
    SpectrogramConfig,
    fix_length,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    read_wav,
)
from torchdojo.viz import start_lesson

LESSON = start_lesson("18_audio_as_tensors")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
RATE = 8000  # FSDD's sample rate: 8,000 samples per second

# %% [markdown]
# ## 1. Sampling and the Nyquist limit
#
# Sampling at `RATE` Hz keeps frequencies below `RATE / 2` (the Nyquist frequency, 4 kHz
# here). A 5 kHz tone is above it: its samples are *exactly* those of a 3 kHz tone (with the
# sign flipped), because sin(2π·5000·n/8000) = sin(2π·(5000 − 8000)·n/8000). Once sampled, the
# two cannot be told apart: this is aliasing, and why audio is low-pass filtered before it is
# sampled.

# %%
n = torch.arange(64, dtype=torch.float64)
t = n / RATE
tone_3k = torch.sin(2 * math.pi * 3000 * t)
tone_5k = torch.sin(2 * math.pi * 5000 * t)
assert torch.allclose(tone_5k, -tone_3k, atol=1e-9)  # 5 kHz aliases onto 3 kHz

fine = torch.linspace(0, float(t[15]), 600, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(8, 2.6))
ax.plot(fine * 1e3, torch.sin(2 * math.pi * 5000 * fine), lw=0.8, label="5 kHz (continuous)")
ax.plot(fine * 1e3, -torch.sin(2 * math.pi * 3000 * fine), lw=0.8, label="−3 kHz (continuous)")
ax.plot(t[:16] * 1e3, tone_5k[:16], "ko", label="samples at 8 kHz")
ax.set(xlabel="time (ms)", title="two tones, one set of samples: aliasing")
ax.legend(loc="upper right", fontsize=8)
save(fig, "aliasing.png")

# %% [markdown]
# ## 2. A clip
#
# `read_wav` returns mono float32 samples in [−1, 1] and the sample rate. It uses
# `soundfile` (libsndfile) when installed and the standard library's `wave` for 16-bit PCM
# otherwise: no FFmpeg needed.


# %%
def load_clip() -> tuple[Tensor, str]:
    """A real FSDD clip ("zero", speaker george) if the data is there, else a synthetic vowel."""
    root = Path(os.environ.get("TORCHDOJO_DATA", "/nonexistent"))
    path = root / "fsdd" / "recordings" / "0_george_0.wav"
    if path.is_file():
        samples, rate = read_wav(path)
        assert rate == RATE
        return torch.from_numpy(samples), f"FSDD {path.name}"
    t = torch.arange(int(0.5 * RATE)) / RATE  # a 0.5 s "vowel": 150 Hz voice with formants
    voice = sum(a * torch.sin(2 * math.pi * 150 * k * t) for k, a in ((1, 1), (5, 0.6), (15, 0.3)))
    return 0.3 * voice * torch.hann_window(len(t), periodic=False), "synthetic vowel"


clip, SOURCE = load_clip()
print(f"{SOURCE}: {len(clip)} samples = {len(clip) / RATE:.2f} s, peak {clip.abs().max():.2f}")
assert clip.dim() == 1 and clip.abs().max() <= 1.0

fig, ax = plt.subplots(figsize=(8, 2.2))
ax.plot(torch.arange(len(clip)) / RATE, clip, lw=0.5)
ax.set(xlabel="time (s)", ylabel="amplitude", title=SOURCE)
save(fig, "waveform.png")

# %% [markdown]
# ## 3. The Fourier transform of a pure tone, and Parseval
#
# The DFT of `N` samples measures `N // 2 + 1` frequencies from 0 to Nyquist, `RATE / N` Hz
# apart. A 1 kHz tone in a 256-sample window (31.25 Hz bins) peaks at bin 1000 / 31.25 = 32.
# Parseval: the energy of the samples equals the energy of the spectrum divided by `N`.

# %%
N = 256
window = torch.hann_window(N, dtype=torch.float64)  # tapers the edges: less leakage
frame = torch.sin(2 * math.pi * 1000 * torch.arange(N, dtype=torch.float64) / RATE) * window
spectrum = torch.fft.rfft(frame)  # (129,) complex
assert len(spectrum) == N // 2 + 1
assert int(spectrum.abs().argmax()) == round(1000 / (RATE / N)) == 32
full = torch.fft.fft(frame)  # both halves
assert torch.isclose(full.abs().square().sum() / N, frame.square().sum())  # Parseval

# %% [markdown]
# ## 4. The short-time Fourier transform
#
# Speech changes every few milliseconds, so we take the DFT of short overlapping windows:
# `n_fft` samples per window, `hop_length` samples between windows. The window length sets
# a trade-off: a long window resolves close frequencies but blurs events in time; a short one
# does the opposite. Two tones 62.5 Hz apart and two clicks 20 ms apart show it.


# %%
def count_peaks(values: Tensor) -> int:
    """Local maxima above half the largest value."""
    v = values / values.max()
    inner = (v[1:-1] > v[:-2]) & (v[1:-1] >= v[2:]) & (v[1:-1] > 0.5)
    return int(inner.sum())


def power_stft(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """|STFT|^2 with a Hann window, (n_fft // 2 + 1, frames)."""
    win = torch.hann_window(n_fft, dtype=x.dtype)
    return torch.stft(x, n_fft, hop, window=win, center=True, return_complex=True).abs().square()


t = torch.arange(RATE, dtype=torch.float64) / RATE  # 1 s
two_tones = torch.sin(2 * math.pi * 1000 * t) + torch.sin(2 * math.pi * 1062.5 * t)
clicks = torch.zeros(RATE, dtype=torch.float64)
clicks[[4000, 4160]] = 1.0  # 160 samples = 20 ms apart
resolution = {}
for n_fft in (64, 1024):
    hop = n_fft // 4
    tones_spectrum = power_stft(two_tones, n_fft, hop).mean(1)  # (F,): average over time
    clicks_energy = power_stft(clicks, n_fft, hop).sum(0)  # (frames,): energy per frame
    resolution[n_fft] = (count_peaks(tones_spectrum), count_peaks(clicks_energy))
    print(
        f"n_fft {n_fft:4d} ({n_fft / RATE * 1e3:5.1f} ms, bins {RATE / n_fft:6.1f} Hz): "
        f"{resolution[n_fft][0]} tone peak(s), {resolution[n_fft][1]} click peak(s)"
    )
assert resolution[1024] == (2, 1)  # long window: two tones resolved, clicks merged
assert resolution[64] == (1, 2)  # short window: tones merged, two clicks resolved

# %% [markdown]
# For speech at 8 kHz we take a 32 ms window (256 samples) every 10 ms (80 samples): a
# 1 s clip becomes 129 frequency bins x 101 frames (`center=True` pads half a window at both
# ends, hence 1 + 8000 // 80 frames). Shorter clips are padded with silence on both sides
# (`fix_length`), longer ones cropped to their loudest second, so every clip gives one size.

# %%
cfg = SpectrogramConfig()  # n_fft 256, hop 80, 40 mels, 1 s clips
padded = fix_length(clip, cfg.clip_samples)  # (8000,)
power = power_stft(padded.double(), cfg.n_fft, cfg.hop_length)  # (129, 101)
assert power.shape == (cfg.n_fft // 2 + 1, cfg.frames) == (129, 101)
fig, ax = plt.subplots(figsize=(8, 3))
ax.imshow(
    torch.log(power + 1e-6), origin="lower", aspect="auto", cmap="magma", extent=(0, 1, 0, RATE / 2)
)
ax.set(xlabel="time (s)", ylabel="frequency (Hz)", title="log power STFT (linear frequency)")
save(fig, "stft.png")

# %% [markdown]
# ## 5. The mel scale and the filterbank
#
# Hearing resolves low frequencies finely and high ones coarsely. The mel scale models that:
# HTK's version (torchaudio's default) is m = 2595 log10(1 + f / 700), so 1000 Hz is about
# 1000 mel. A mel filterbank puts `n_mels + 2` points evenly on the mel scale and draws a
# triangle from each point to the next-but-one: narrow triangles at low frequencies, wide
# ones at high frequencies. We build it by hand and compare with the library's.


# %%
def hand_filterbank(n_freqs: int, n_mels: int, rate: int) -> np.ndarray:
    """Triangles (n_mels, n_freqs) with peaks of 1 at mel-spaced centres (HTK scale)."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)

    centres = 700 * (10 ** (np.linspace(0, mel(np.array(rate / 2)), n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, rate / 2, n_freqs)
    bank = np.zeros((n_mels, n_freqs))
    for m in range(n_mels):
        left, centre, right = centres[m], centres[m + 1], centres[m + 2]
        rising = (freqs - left) / (centre - left)
        falling = (right - freqs) / (right - centre)
        bank[m] = np.clip(np.minimum(rising, falling), 0, None)
    return bank


bank = mel_filterbank(n_freqs=129, n_mels=cfg.n_mels, sample_rate=RATE)  # (40, 129)
assert np.allclose(bank.numpy(), hand_filterbank(129, cfg.n_mels, RATE), atol=1e-6)
assert abs(float(hz_to_mel(torch.tensor(1000.0))) - 1000) < 0.1  # 1000 Hz is about 1000 mel
centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(RATE / 2))), cfg.n_mels + 2))
widths = centres[2:] - centres[:-2]  # (40,) Hz each triangle spans
assert (widths.diff() > 0).all()  # every triangle is wider than the one below it
inner = slice(int(centres[1] / 31.25) + 1, int(centres[-2] / 31.25))
assert torch.allclose(bank[:, inner].sum(0), torch.ones(1), atol=1e-5)  # they tile: sum to 1
print(f"mel triangles span {widths[0]:.0f} Hz at the bottom, {widths[-1]:.0f} Hz at the top")

fig, ax = plt.subplots(figsize=(8, 2.6))
ax.plot(np.linspace(0, RATE / 2, 129), bank.T, lw=0.8)
ax.set(xlabel="frequency (Hz)", ylabel="weight", title=f"{cfg.n_mels} mel filters (HTK scale)")
save(fig, "mel_filterbank.png")

# %% [markdown]
# A pure tone lands in the band whose centre is nearest to it.

# %%
tone = torch.sin(2 * math.pi * 1000 * torch.arange(RATE) / RATE)
band = int(log_mel_spectrogram(tone, cfg).mean(1).argmax())
assert band == int((centres[1:-1] - 1000).abs().argmin())
print(f"a 1 kHz tone peaks in mel band {band} (centre {centres[band + 1]:.0f} Hz)")

# %% [markdown]
# ## 6. Log compression
#
# Power spans many orders of magnitude between a vowel and the silence around it; a log
# squeezes that into a range a network handles, and turns loudness into an offset: halving the
# amplitude quarters the power, which subtracts log 4 everywhere (away from the 1e-6 floor).
# Normalizing with the training set's mean and std then removes most of it.

# %%
log_mel = log_mel_spectrogram(padded, cfg)  # (40, 101)
quiet = log_mel_spectrogram(0.5 * padded, cfg)
loud_cells = log_mel > math.log(1e-6) + 8  # far above the floor
shift = (quiet - log_mel)[loud_cells]
assert torch.allclose(shift, torch.full_like(shift, 2 * math.log(0.5)), atol=1e-3)
mel_power = log_mel.exp()
print(
    f"mel power spans {float(mel_power.max() / mel_power.min()):.1e}x; "
    f"its log spans {float(log_mel.max() - log_mel.min()):.1f}"
)

# %% [markdown]
# ## 7. SpecAugment
#
# SpecAugment (Park et al., 2019) hides random bands of mel rows and stripes of frames
# during training, so the network cannot lean on any single frequency or moment. On a
# normalized spectrogram the masks are set to 0, the mean. The masks are seeded.

# %%
normalized = ((log_mel - log_mel.mean()) / log_mel.std())[None, None]  # (1, 1, 40, 101)
augment = SpecAugment(freq_masks=2, freq_width=6, time_masks=2, time_width=12, seed=0)
masked = augment(normalized.expand(4, 1, -1, -1))  # (4, 1, 40, 101): four draws
assert torch.equal(
    masked, SpecAugment(freq_width=6, time_width=12, seed=0)(normalized.expand(4, 1, -1, -1))
)  # same seed, same masks
hidden = (masked == 0).float().mean((1, 2, 3))  # fraction hidden per draw
assert (hidden <= 1 - (1 - 12 / 40) * (1 - 24 / 101)).all()  # at most 2x6 rows and 2x12 frames
print("fraction hidden per draw:", [round(float(h), 2) for h in hidden])

fig, axes = plt.subplots(1, 5, figsize=(12, 2.4), sharey=True, layout="constrained")
for ax, image, title in zip(
    axes,
    [normalized[0, 0], *masked[:, 0]],
    ["log-mel", "mask 1", "mask 2", "mask 3", "mask 4"],
    strict=True,
):
    ax.imshow(image, origin="lower", aspect="auto", cmap="magma")
    ax.set(title=title, xlabel="frame (10 ms)")
axes[0].set_ylabel("mel band")
save(fig, "specaugment.png")

# %% [markdown]
# ## 8. Ten digits
#
# With the real data, one speaker's ten digits side by side: the shapes differ in time and
# in which mel bands light up. `torchdojo run spoken-digits` trains a small CNN on 2,700 such
# images (0.997 test accuracy on the official split, whose test voices are also in training);
# `--set split=speaker:<name>` asks the harder question of a voice it has never heard (0.61 to
# 0.86 per held-out speaker, mean 0.77: `benchmarks/fsdd_speakers.py`).

# %%
root = Path(os.environ.get("TORCHDOJO_DATA", "/nonexistent")) / "fsdd" / "recordings"
digits = range(10) if root.is_dir() and not SMOKE else range(0)
if digits:
    fig, axes = plt.subplots(2, 5, figsize=(12, 4.5), sharey=True, layout="constrained")
    for ax, digit in zip(axes.flat, digits, strict=True):
        samples, _ = read_wav(root / f"{digit}_jackson_0.wav")
        x = torch.from_numpy(samples)
        image = log_mel_spectrogram(x, cfg)  # (40, frames of this clip)
        assert image.shape[0] == cfg.n_mels and torch.isfinite(image).all()
        ax.imshow(image, origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"'{digit}' ({len(x) / RATE:.2f} s)")
    save(fig, "ten_digits.png")
