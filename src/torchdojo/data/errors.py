"""The error every data reader raises for an input a person can fix."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or folder that cannot be used as it is; the message names it and the fix.

    The runner treats it like a bad ``--set`` value: a new run stopped by it before its first
    checkpoint leaves no run folder behind, and the CLI prints the message in one line.
    """
