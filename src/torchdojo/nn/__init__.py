"""Layer 1: reusable blocks (conv-BN-act, residual units, attention, patch embedding),
weight initialisation and losses. Imports nothing above ``torchdojo.utils``."""

from torchdojo.nn.attention import (
    FeedForward,
    MultiHeadSelfAttention,
    PostNormTransformerBlock,
    TransformerBlock,
)
from torchdojo.nn.blocks import ConvBnAct, Residual
from torchdojo.nn.embed import PatchEmbed
from torchdojo.nn.init import InitScheme, init_weights
from torchdojo.nn.losses import DiceLoss, FocalLoss, dice_loss, focal_loss
from torchdojo.nn.residual import BasicBlock, InvertedResidual, inverted_residual
from torchdojo.nn.sequence import (
    ElmanRNN,
    ElmanRNNCell,
    SinusoidalPositionalEncoding,
    sinusoidal_encoding,
)

__all__ = [
    "BasicBlock",
    "ConvBnAct",
    "DiceLoss",
    "ElmanRNN",
    "ElmanRNNCell",
    "FeedForward",
    "FocalLoss",
    "InitScheme",
    "InvertedResidual",
    "MultiHeadSelfAttention",
    "PatchEmbed",
    "PostNormTransformerBlock",
    "Residual",
    "SinusoidalPositionalEncoding",
    "TransformerBlock",
    "dice_loss",
    "focal_loss",
    "init_weights",
    "inverted_residual",
    "sinusoidal_encoding",
]
