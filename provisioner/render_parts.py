"""What each part of the product contributes to a rendered bundle.

The renderer asks every part (policy modules, license, push gateway, ...) for a ``RenderPart``
and merges them, so each part owns its own slice of ``homeserver.yaml`` and its own files
without the renderer knowing their insides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RenderPart:
    """One part's contribution.

    - ``homeserver``: top-level ``homeserver.yaml`` keys to set (a key set by two parts is a bug
      the renderer reports, except ``modules``, whose lists are concatenated in part order).
    - ``files``: bundle-relative path → content (``str`` is written as UTF-8). Mode 0644.
    - ``warnings``: one line each, printed by ``chat500 render`` (e.g. license expiring soon).
    """

    homeserver: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def module_entry(module: str, config: dict[str, Any]) -> dict[str, Any]:
    """One ``modules:`` list item as Synapse expects it."""
    return {"module": module, "config": config}
