from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from torchdojo.runs import ConfigError, apply_overrides, parse_overrides


@dataclass(frozen=True)
class Cfg:
    lr: float = 0.1
    epochs: int = 1
    init: Literal["kaiming", "xavier"] = "kaiming"
    limit: int | None = None
    flag: bool = False
    betas: tuple[float, float] = (0.9, 0.99)


def test_overrides_are_converted_to_field_types() -> None:
    cfg = apply_overrides(
        Cfg(),
        parse_overrides(
            ["lr=0.5", "epochs=3", "init=xavier", "limit=none", "flag=true", "betas=0.7,0.9"]
        ),
    )
    assert cfg == Cfg(lr=0.5, epochs=3, init="xavier", limit=None, flag=True, betas=(0.7, 0.9))
    assert apply_overrides(Cfg(), {"limit": "5"}).limit == 5


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr=fast", "lr='fast' is not a number"),
        ("init=normal", "not one of kaiming, xavier"),
        ("nope=1", "unknown config key 'nope'. Available: lr, epochs"),
        ("lor=1", "Did you mean 'lr'"),
        ("epochs=0", "epochs=0: must be >= 1"),
        ("lr=-1", r"lr=-1.0: must be > 0"),
        ("betas=0.9", "betas='0.9' needs 2 values"),
        ("lr=inf", "not a finite number"),
        ("flag=maybe", "not a boolean"),
    ],
)
def test_bad_overrides_name_the_key_and_the_fix(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Cfg(), parse_overrides([item]))


def test_set_needs_key_value() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])
