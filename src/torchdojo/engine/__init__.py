"""Layer 2: the training engine — Trainer, callbacks, checkpoints, loaders, DDP helpers."""

from torchdojo.engine.callbacks import (
    Callback,
    EarlyStopping,
    EvalOutput,
    GradientClipping,
    MetricsLogger,
    StepOutput,
)
from torchdojo.engine.checkpoint import (
    Checkpoint,
    CheckpointManager,
    load_checkpoint,
    save_checkpoint,
)
from torchdojo.engine.ema import EMA, averaged
from torchdojo.engine.loader import ResumableSampler, TensorLoader, make_loader
from torchdojo.engine.mixing import BatchMixer, Mix
from torchdojo.engine.progress import ProgressBar
from torchdojo.engine.trainer import (
    EvalFn,
    History,
    Loaders,
    NonFiniteLossError,
    StepFn,
    Trainer,
    TrainerConfig,
    TrainingInterrupted,
    TrainState,
)
from torchdojo.engine.transfer import Freeze

__all__ = [
    "EMA",
    "BatchMixer",
    "Callback",
    "EvalFn",
    "EvalOutput",
    "Freeze",
    "GradientClipping",
    "Mix",
    "StepFn",
    "Checkpoint",
    "CheckpointManager",
    "EarlyStopping",
    "History",
    "Loaders",
    "MetricsLogger",
    "NonFiniteLossError",
    "ProgressBar",
    "ResumableSampler",
    "StepOutput",
    "TensorLoader",
    "TrainState",
    "Trainer",
    "TrainerConfig",
    "TrainingInterrupted",
    "averaged",
    "load_checkpoint",
    "make_loader",
    "save_checkpoint",
]
