"""Settings declared once: a dataclass field carries its help, choices and range; flags and checks follow.

A settings dataclass (`TrainConfig`, `TransferOptions`, `LRFindOptions`) declares each
field with `setting(default, "help", choices=..., at_least=...)`. From that one
declaration:

- `add_flags(parser, cls, names)` adds `--kebab-case` flags (type from the annotation;
  a bool whose default is False is a bare `--x`, one whose default is True or None is
  `--x/--no-x`), every default None so a flag not given leaves the config file or the
  recipe alone;
- `flag_values(args, cls)` reads the given flags back as keyword arguments;
- `check(obj)` raises a ConfigError naming the flag when a value is not one of the
  choices or outside the range.

Imports nothing heavy: `cnnkit --help` builds every parser from here.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
from collections.abc import Iterable
from typing import Any

from .errors import ConfigError

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, help: str = "", *, choices: Iterable[str] | None = None,
            at_least: float | None = None, above: float | None = None, below: float | None = None,
            range_text: str | None = None, metavar: str | None = None) -> Any:
    """A dataclass field with its flag's help, its choices and its range (as field metadata).

    `at_least` (>=), `above` (>) and `below` (<) bound a number (None passes: "not set");
    `range_text` replaces the generated "must be ..." part of the message when the range
    needs words (e.g. "is a decay in [0, 1), e.g. 0.999").
    """
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None,
                "at_least": at_least, "above": above, "below": below, "range_text": range_text,
                "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _fields(cls, names: Iterable[str] | None = None) -> list[dataclasses.Field]:
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    if names is None:
        return list(by_name.values())
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {unknown[0]!r}")
    return [by_name[n] for n in names]


@functools.cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(annotation: Any) -> Any:
    """`int | None` -> int; `str` -> str."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return args[0] if len(args) == 1 else str
    return annotation


def describe(f: dataclasses.Field) -> str:
    """The flag's help: the field's text, with its default when that says something."""
    text = f.metadata.get("help", "")
    default = f.default
    if default is not _MISSING and default is not None and not isinstance(default, bool) and "default" not in text:
        text = f"{text} (default: {default})" if text else f"default: {default}"
    return text


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls, names: Iterable[str] | None = None,
              *, help: dict[str, str] | None = None) -> list[str]:
    """Add a flag per field of `cls` (all of them, or `names`); returns the field names added.

    `help` replaces a field's text for this verb only (e.g. finetune's `--lr`).
    """
    added = []
    for f in _fields(cls, names):
        kind = _base_type(_hints(cls)[f.name])
        text = (help or {}).get(f.name) or describe(f)
        kwargs: dict[str, Any] = {"default": None, "help": text or None}
        if kind is bool:
            negatable = f.default is True or f.default is None
            kwargs["action"] = argparse.BooleanOptionalAction if negatable else "store_true"
        else:
            kwargs["type"] = kind if kind in (int, float) else str
            if f.metadata.get("choices"):
                kwargs["choices"] = list(f.metadata["choices"])
            metavar = f.metadata.get("metavar") or {int: "N", float: "X"}.get(kind)
            if metavar and not f.metadata.get("choices"):
                kwargs["metavar"] = metavar
        parser.add_argument(flag(f.name), dest=f.name, **kwargs)
        added.append(f.name)
    return added


def flag_values(args: argparse.Namespace, cls, names: Iterable[str] | None = None) -> dict[str, Any]:
    """{field: value} of `cls`'s fields the parser has (None where the flag was not given)."""
    return {f.name: getattr(args, f.name) for f in _fields(cls, names) if hasattr(args, f.name)}


def from_flags(args: argparse.Namespace, cls, base: Any = None) -> Any:
    """`base` (or `cls()`) with the flags of `cls` that were given applied."""
    given = {k: v for k, v in flag_values(args, cls).items() if v is not None}
    return dataclasses.replace(base if base is not None else cls(), **given)


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _or_list(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _range_message(f: dataclasses.Field) -> str:
    m = f.metadata
    if m.get("range_text"):
        return f"{flag(f.name)} {m['range_text']}"
    low, high = m.get("at_least"), m.get("below")
    if low is not None and high is not None:
        return f"{flag(f.name)} must be in [{low:g}, {high:g})"
    if m.get("above") == 0 and high is None:
        return f"{flag(f.name)} must be positive"
    if m.get("above") is not None:
        return f"{flag(f.name)} must be above {m['above']:g}"
    if low is not None:
        return f"{flag(f.name)} must be at least {low:g}" if low else f"{flag(f.name)} must be >= 0"
    return f"{flag(f.name)} must be below {high:g}"


def check(obj) -> None:
    """Raise ConfigError for the first field whose value is not a choice or is out of range.

    A value of the wrong type (e.g. `epochs: ten` from YAML) raises TypeError when compared;
    the caller turns that into its own ConfigError.
    """
    for f in dataclasses.fields(obj):
        value, m = getattr(obj, f.name), f.metadata
        if value is None or not m:
            continue
        if m.get("choices") and value not in m["choices"]:
            raise ConfigError(f"{flag(f.name)} must be {_or_list(m['choices'])}")
        low, above, high = m.get("at_least"), m.get("above"), m.get("below")
        if ((low is not None and value < low) or (above is not None and value <= above)
                or (high is not None and value >= high)):
            raise ConfigError(_range_message(f))
