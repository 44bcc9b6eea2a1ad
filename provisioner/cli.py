"""``chat500``: the command-line entry point. Each command group lives in its own module."""

from __future__ import annotations

import sys

import click

from provisioner.errors import Chat500Error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chat500mg")
def cli() -> None:
    """Provision and administer a Chat500MG deployment for one organization."""


def _register_commands() -> None:
    # Imported here so each command module can import `cli`-level helpers without a cycle.
    from provisioner import cli_deploy, cli_license, cli_spec, cli_users

    for module in (cli_spec, cli_deploy, cli_users, cli_license):
        for command in module.COMMANDS:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a ``Chat500Error`` becomes its message on stderr and its exit code."""
    _register_commands()
    try:
        cli.main(args=argv, standalone_mode=False)
    except Chat500Error as err:
        for line in str(err).splitlines() or ["error"]:
            click.echo(f"chat500: {line}" if not line.startswith("chat500:") else line, err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("chat500: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
