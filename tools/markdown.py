"""Markdown helpers for model output."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def strip_fences(code: str) -> str:
    """The first fenced code block in `code` (models often add one despite being asked not to), else all of it."""
    match = _FENCE.search(code)
    return (match.group(1) if match else code).strip()
