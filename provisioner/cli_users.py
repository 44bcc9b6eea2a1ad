"""Placeholder: filled in by its own issue."""

import click

COMMANDS: list[click.Command] = []
