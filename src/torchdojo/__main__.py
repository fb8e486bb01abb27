"""``python -m torchdojo`` (and ``torchrun -m torchdojo run ...``)."""

from torchdojo.cli import main

main()
