"""A small 2-D CNN over log-mel spectrograms (1, n_mels, frames), for short sound clips.

Four conv-BN-ReLU layers, the first three each followed by a 2x2 max-pool, then a mean over time only: the
position of energy in *frequency* (pitch, formants) tells digits apart, its position in *time*
does not (a clip may start late), so frequency keeps its ``n_mels // 8`` rows into the linear
layer. Taught in lessons/18_audio_as_tensors.py. Recipe: spoken_digits.
"""

from __future__ import annotations

from torch import Tensor, nn

from torchdojo.models.registry import register_model
from torchdojo.nn.blocks import ConvBnAct


class AudioCNN(nn.Module):
    """Conv-BN-ReLU layers and pools over (B, C, n_mels, frames), mean over time, a linear layer.

    Taught in lessons/18_audio_as_tensors.py.

    Args:
        in_channels: Channels of the spectrogram (1: one log-mel image).
        num_classes: Output logits.
        n_mels: Mel bands of the input; at least 8 (three halvings).
        width: Channels of the first stage; the later ones have 2x and 4x.
        dropout: Dropout before the classifier.
    """

    def __init__(
        self, *, in_channels: int, num_classes: int, n_mels: int, width: int, dropout: float
    ) -> None:
        super().__init__()
        if n_mels < 8:
            raise ValueError(f"n_mels={n_mels}: audio-cnn halves frequency 3 times, use >= 8")
        self.features = nn.Sequential(
            ConvBnAct(in_channels, width),
            nn.MaxPool2d(2),  # (B, w, M/2, T/2)
            ConvBnAct(width, 2 * width),
            nn.MaxPool2d(2),  # (B, 2w, M/4, T/4)
            ConvBnAct(2 * width, 4 * width),
            nn.MaxPool2d(2),  # (B, 4w, M/8, T/8)
            ConvBnAct(4 * width, 4 * width),
        )
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, 4w * M/8)
            nn.Dropout(dropout),
            nn.Linear(4 * width * (n_mels // 8), num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, 4w, M/8, T/8)
        x = x.mean(dim=3)  # (B, 4w, M/8): global pooling over time
        return self.head(x)  # (B, num_classes)


@register_model
def audio_cnn(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    n_mels: int = 40,
    width: int = 16,
    dropout: float = 0.2,
) -> AudioCNN:
    """The spoken-digits CNN: 64k parameters at width 16 with 40 mel bands."""
    return AudioCNN(
        in_channels=in_channels,
        num_classes=num_classes,
        n_mels=n_mels,
        width=width,
        dropout=dropout,
    )
