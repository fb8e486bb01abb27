"""Layer 2: the training engine — Trainer, callbacks, checkpoints, loaders, DDP helpers."""

from torchdojo.engine.callbacks import Callback, EarlyStopping, MetricsLogger, StepOutput
from torchdojo.engine.checkpoint import (
    Checkpoint,
    CheckpointManager,
    load_checkpoint,
    save_checkpoint,
)
from torchdojo.engine.loader import ResumableSampler, TensorLoader, make_loader
from torchdojo.engine.progress import ProgressBar
from torchdojo.engine.trainer import (
    History,
    Loaders,
    NonFiniteLossError,
    Trainer,
    TrainerConfig,
    TrainingInterrupted,
    TrainState,
)

__all__ = [
    "Callback",
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
    "load_checkpoint",
    "make_loader",
    "save_checkpoint",
]
