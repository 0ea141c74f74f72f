"""Byte sizes as the command line writes them (``16MiB``), and the sizes S3 and KubeMQ impose.

Only the standard library here: the parser of every ``kubemq-s3`` command uses it.
"""

from __future__ import annotations

import argparse
import re

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part, for every part but the last
DEFAULT_PART = 16 * MIB
# Binary units, whatever the spelling: 16M, 16MiB and 16MB all mean 16 * 1024 * 1024.
SIZE = re.compile(r"^\s*(\d+)\s*(?:([kmg])(?:i?b)?|b)?\s*$", re.IGNORECASE)
POWERS = {"k": 1, "m": 2, "g": 3}


def parse_size(text: str) -> int:
    """``16MiB`` -> 16777216; an argparse type, so a mistake is a usage error naming the value."""
    match = SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: write bytes, or a number with KiB, MiB or GiB (e.g. 16MiB)")
    number, unit = match.groups()
    return int(number) << (10 * POWERS.get((unit or "").lower(), 0))


def part_size(text: str) -> int:
    """A size of at least S3's smallest part."""
    size = parse_size(text)
    if size < MIN_PART:
        raise argparse.ArgumentTypeError(f"{text!r} is less than 5MiB, S3's smallest part")
    return size


def message_size(text: str) -> int:
    """A message size of at least 1 MiB, the least a binding's ``max_message_size`` takes."""
    size = parse_size(text)
    if size < MIB:
        raise argparse.ArgumentTypeError(f"{text!r} is less than 1MiB, the smallest max_message_size")
    return size


def shown(size: int) -> str:
    """``16MiB`` for whole MiB, else bytes: how sizes appear in messages."""
    return f"{size // MIB}MiB" if size % MIB == 0 and size else f"{size} bytes"
