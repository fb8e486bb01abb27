"""Sound as tensors: WAV reading (soundfile and the standard library), the mel filterbank
against hand-computed triangles and known properties, the STFT against SciPy and Parseval,
SpecAugment, the FSDD splits (synthetic here, real under $TORCHDOJO_DATA)."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from torchdojo.data.audio import (
    AudioFileError,
    SpecAugment,
    SpectrogramConfig,
    check_rate,
    fix_length,
    hz_to_mel,
    load_fsdd,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    read_fsdd,
    read_wav,
    split_clips,
    synthetic_digits,
)

RATE = 8000


def tone(freq: float, seconds: float = 0.5, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_pcm16(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    """A 16-bit PCM WAV written with the standard library (samples: (L,) or (L, channels))."""
    ints = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(ints.tobytes())
    return path


# ---------------------------------------------------------------- mel scale and filterbank


def test_mel_scales_hit_their_anchor_points_and_invert() -> None:
    f = torch.tensor([0.0, 200.0, 700.0, 1000.0, 2500.0, 4000.0], dtype=torch.float64)
    # HTK: 1000 Hz is (almost exactly) 1000 mel; 700 Hz is 2595 log10(2)
    assert float(hz_to_mel(f, "htk")[3]) == pytest.approx(1000.0, abs=0.02)
    assert float(hz_to_mel(f, "htk")[2]) == pytest.approx(2595 * np.log10(2))
    # Slaney: linear 3 mel per 200 Hz up to 1 kHz = 15 mel, then log steps of ln(6.4)/27
    assert hz_to_mel(f, "slaney")[:4].tolist() == pytest.approx([0.0, 3.0, 10.5, 15.0])
    assert float(hz_to_mel(torch.tensor([6400.0]), "slaney")) == pytest.approx(15 + 27)
    for scale in ("htk", "slaney"):
        assert torch.allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-6)  # type: ignore[arg-type]


def test_one_band_filterbank_is_the_hand_computed_triangle() -> None:
    # n_mels=1: edges 0 and 4000 Hz, centre at the mel midpoint; 9 bins at 0, 500, ..., 4000 Hz
    bank = mel_filterbank(n_freqs=9, n_mels=1, sample_rate=RATE).double()
    centre = 700 * (10 ** (2595 * np.log10(1 + 4000 / 700) / 2 / 2595) - 1)  # about 1518 Hz
    freqs = np.arange(9) * 500.0
    want = np.where(freqs <= centre, freqs / centre, (4000 - freqs) / (4000 - centre))
    assert bank.shape == (1, 9)
    assert np.allclose(bank[0].numpy(), want, atol=1e-6)


def test_triangles_peak_at_mel_centres_and_partition_unity() -> None:
    n_mels, n_freqs = 20, 4001  # bins 1 Hz apart: every centre lands within half a bin
    bank = mel_filterbank(n_freqs=n_freqs, n_mels=n_mels, sample_rate=RATE)
    centres = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(4000.0))), n_mels + 2))
    assert bank.shape == (n_mels, n_freqs)
    assert torch.allclose(bank.argmax(1).float(), centres[1:-1].round(), atol=1)
    assert torch.allclose(bank.amax(1), torch.ones(n_mels), atol=0.01)  # peak within 0.5 Hz
    # between the first and last centre, the two overlapping triangles always sum to 1
    inner = slice(int(centres[1]) + 1, int(centres[-2]))
    assert torch.allclose(bank[:, inner].sum(0), torch.ones(1), atol=1e-5)
    assert ((bank > 0).sum(0) <= 2).all()  # never more than two filters overlap


def test_slaney_norm_gives_every_triangle_unit_area_in_hz() -> None:
    bank = mel_filterbank(n_freqs=4001, n_mels=20, sample_rate=RATE, scale="slaney", norm="slaney")
    assert torch.allclose(bank.sum(1), torch.ones(20), rtol=0.02)  # bins are 1 Hz wide


def test_too_many_mels_for_the_fft_is_refused() -> None:
    with pytest.raises(ValueError, match="larger n_fft"):
        mel_filterbank(n_freqs=33, n_mels=64, sample_rate=RATE)
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(n_freqs=129, n_mels=10, sample_rate=RATE, f_max=5000)


# ---------------------------------------------------------------- STFT and log-mel


def test_torch_stft_matches_scipy_and_parseval() -> None:
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    x = (tone(440.0) + 0.1 * rng.normal(size=4000)).astype(np.float64)
    window = torch.hann_window(256, dtype=torch.float64)
    ours = torch.stft(
        torch.from_numpy(x), 256, 80, window=window, center=False, return_complex=True
    )  # (129, frames)
    _, _, ref = signal.stft(
        x, RATE, window="hann", nperseg=256, noverlap=176, boundary=None, padded=False
    )  # SciPy divides by the window's sum
    assert ours.shape == ref.shape
    assert np.allclose(ours.abs().numpy(), np.abs(ref) * window.sum().item(), atol=1e-9)
    # Parseval for one frame: sum |X_k|^2 over all 256 bins = 256 * sum (w x)^2
    frame = torch.from_numpy(x[:256]) * window
    full = torch.fft.fft(frame)
    assert float(full.abs().square().sum()) == pytest.approx(256 * float(frame.square().sum()))
    one_sided = ours[:, 0].abs().square()
    two_sided = one_sided[0] + 2 * one_sided[1:-1].sum() + one_sided[-1]
    assert float(two_sided) == pytest.approx(256 * float(frame.square().sum()))


def test_a_pure_tone_peaks_in_its_stft_bin_and_mel_band() -> None:
    cfg = SpectrogramConfig()
    x = torch.from_numpy(tone(1000.0, seconds=1.0))
    power = torch.stft(
        x, cfg.n_fft, cfg.hop_length, window=torch.hann_window(cfg.n_fft), return_complex=True
    ).abs()
    assert int(power.mean(1).argmax()) == round(1000 / (RATE / cfg.n_fft))  # bin 32
    log_mel = log_mel_spectrogram(x, cfg)  # (n_mels, frames)
    assert log_mel.shape == (cfg.n_mels, cfg.frames)
    mels = torch.linspace(0, float(hz_to_mel(torch.tensor(4000.0))), cfg.n_mels + 2)[1:-1]
    closest = int((mel_to_hz(mels) - 1000).abs().argmin())
    assert int(log_mel.mean(1).argmax()) == closest
    silence = log_mel_spectrogram(torch.zeros(RATE), cfg)
    assert torch.allclose(silence, torch.full_like(silence, float(np.log(1e-6))))


def test_fix_length_pads_centred_and_crops_the_loudest_second() -> None:
    short = torch.ones(4)
    assert fix_length(short, 8).tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    long = torch.zeros(100)
    long[70:80] = 1.0
    cropped = fix_length(long, 20)
    assert cropped.shape == (20,) and float(cropped.sum()) == 10.0


def test_specaugment_is_seeded_and_masks_whole_rows_and_columns() -> None:
    x = torch.randn(8, 1, 40, 101) + 5.0  # no true zeros
    a = SpecAugment(seed=3)(x)
    assert torch.equal(a, SpecAugment(seed=3)(x))
    assert not torch.equal(a, SpecAugment(seed=4)(x))
    masked = a == 0
    assert masked.any() and (~masked).any()
    assert torch.equal(a[~masked], x[~masked])  # what is not masked is untouched
    for b in range(8):  # every masked cell lies on a fully masked mel row or frame column
        rows, cols = masked[b, 0].all(1), masked[b, 0].all(0)
        assert torch.equal(masked[b, 0], rows[:, None] | cols[None, :])


# ---------------------------------------------------------------- WAV files


def test_wav_round_trip_with_wave_and_soundfile(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    x = tone(440.0, seconds=0.2)
    by_wave = write_pcm16(tmp_path / "wave.wav", x)
    by_sf = tmp_path / "sf.wav"
    soundfile.write(str(by_sf), x, RATE, subtype="PCM_16")
    for path in (by_wave, by_sf):
        for backend in ("wave", "soundfile", "auto"):
            samples, rate = read_wav(path, backend=backend)
            assert rate == RATE and samples.dtype == np.float32
            assert np.abs(samples - x).max() <= 1 / 32768 + 1e-6, (path.name, backend)
    stereo = np.stack([x, -x / 2], axis=1)  # (L, 2): mixed to mono by averaging
    write_pcm16(tmp_path / "stereo.wav", stereo, channels=2)
    for backend in ("wave", "soundfile"):
        mono, _ = read_wav(tmp_path / "stereo.wav", backend=backend)
        assert np.abs(mono - x / 4).max() < 1e-4


def test_formats_beyond_16_bit_pcm_need_soundfile(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    path = tmp_path / "float.wav"
    soundfile.write(str(path), tone(300.0, 0.1), RATE, subtype="FLOAT")
    samples, _ = read_wav(path, backend="soundfile")
    assert np.abs(samples - tone(300.0, 0.1)).max() < 1e-6
    with pytest.raises(
        AudioFileError, match=r"float\.wav: not a readable WAV.*16-bit PCM.*torchdojo\[audio\]"
    ):
        read_wav(path, backend="wave")


def test_missing_soundfile_falls_back_to_wave_and_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pcm16(tmp_path / "a.wav", tone(500.0, 0.1))
    monkeypatch.setitem(sys.modules, "soundfile", None)  # import soundfile -> ImportError
    samples, rate = read_wav(path)  # auto: the standard library takes over
    assert rate == RATE and len(samples) == 800
    with pytest.raises(
        ImportError, match=r'needs the audio extra: pip install "torchdojo\[audio\]"'
    ):
        read_wav(path, backend="soundfile")


@pytest.mark.parametrize("backend", ["wave", "soundfile"])
def test_corrupt_and_empty_wavs_are_named(tmp_path: Path, backend: str) -> None:
    if backend == "soundfile":
        pytest.importorskip("soundfile")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00not really a wave file at all")
    with pytest.raises(AudioFileError, match="garbage.wav: not a readable"):
        read_wav(garbage, backend=backend)
    empty = write_pcm16(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioFileError, match="empty.wav: holds no samples"):
        read_wav(empty, backend=backend)
    with pytest.raises(AudioFileError, match="nothere.wav: no such file"):
        read_wav(tmp_path / "nothere.wav", backend=backend)


def test_a_dataset_scan_skips_and_names_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    for digit in range(2):
        for index in range(6):
            write_pcm16(folder / f"{digit}_ann_{index}.wav", tone(300.0 + 200 * digit, 0.1))
    (folder / "3_ann_0.wav").write_bytes(b"\x00" * 10)
    write_pcm16(folder / "4_ann_0.wav", tone(300.0, 0.1), rate=16000)
    cfg = SpectrogramConfig(n_mels=16)
    clips = read_fsdd(folder, cfg, max_bad_fraction=0.5)
    assert len(clips.y) == 12 and clips.x.shape == (12, 1, 16, cfg.frames)
    assert [b.split(" ")[0] for b in clips.bad_files] == ["3_ann_0.wav", "4_ann_0.wav"]
    assert "16000 Hz" in clips.bad_files[1]
    with pytest.raises(ValueError, match=r"2 of 14 WAV files are unusable.*3_ann_0\.wav"):
        read_fsdd(folder, cfg, max_bad_fraction=0.1)
    with pytest.raises(AudioFileError, match="x.wav: sampled at 44100 Hz.*resample"):
        check_rate(44100, RATE, "x.wav")
    with pytest.raises(FileNotFoundError, match="fsdd-tiny"):
        load_fsdd(tmp_path / "nowhere")


# ---------------------------------------------------------------- splits


def test_synthetic_split_protocols_and_loudness_is_no_shortcut() -> None:
    cfg = SpectrogramConfig(n_mels=16)
    clips = synthetic_digits(cfg, per_class=15, seed=1)
    train, test = split_clips(clips, "official")
    assert (len(train), len(test)) == (100, 50)
    assert torch.bincount(test.y).tolist() == [5] * 10
    assert abs(float(train.x.mean())) < 1e-4 and float(train.x.std()) == pytest.approx(1, 1e-3)
    held_train, held_test = split_clips(clips, "speaker:b")
    assert (len(held_train), len(held_test)) == (100, 50)
    with pytest.raises(ValueError, match="speaker:zed.*speaker:a, speaker:b, speaker:c"):
        split_clips(clips, "speaker:zed")
    # a nearest-class-mean classifier on overall loudness alone stays near chance
    loud_train, loud_test = train.x.mean((1, 2, 3)), test.x.mean((1, 2, 3))
    centres = torch.stack([loud_train[train.y == c].mean() for c in range(10)])
    guess = (loud_test[:, None] - centres[None, :]).abs().argmin(1)
    assert float((guess == test.y).float().mean()) < 0.35


def test_real_fsdd_official_split_counts(real_data: Path) -> None:
    if not (real_data / "fsdd" / "recordings").is_dir():
        pytest.skip("no fsdd/recordings in the data root")
    train, test = load_fsdd(real_data, "official")
    assert (len(train), len(test)) == (2700, 300)
    assert torch.bincount(test.y).tolist() == [30] * 10
    assert train.x.shape[1:] == (1, 40, 101) and torch.isfinite(train.x).all()
    held_train, held_test = load_fsdd(real_data, "speaker:theo")
    assert (len(held_train), len(held_test)) == (2500, 500)
