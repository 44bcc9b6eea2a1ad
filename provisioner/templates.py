"""The one Jinja environment for ``config_templates/``: strict, so a typo is an error."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "config_templates"


def _yaml_scalar(value: Any) -> str:
    """A value as inline YAML (quoted strings, flow lists), safe inside a template line."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml"] = _yaml_scalar
    env.filters["to_yaml"] = lambda value: yaml.safe_dump(value, sort_keys=True)
    return env


def render_template(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(**context)
