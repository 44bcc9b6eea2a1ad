"""Check a rendered ``homeserver.yaml`` with Synapse's own config parser before it is used.

Synapse's parser also imports every module in ``modules:`` and runs its ``parse_config``, so a
bad module config is caught at render time, not at start-up.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import Chat500Error

REFUSED = "render: Synapse rejects the rendered homeserver.yaml"


def check_homeserver_config(paths: list[Path]) -> None:
    from synapse.config._base import ConfigError
    from synapse.config.homeserver import HomeServerConfig

    try:
        argv = [arg for path in paths for arg in ("--config-path", str(path))]
        HomeServerConfig.load_config("chat500 render", argv)
    except ConfigError as err:
        where = " / ".join(str(p) for p in (err.path or ()))
        raise Chat500Error(f"{REFUSED}: {where + ': ' if where else ''}{err.msg}") from err
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise Chat500Error(f"{REFUSED}: {err}") from err
