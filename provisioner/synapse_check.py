"""Check a rendered ``homeserver.yaml`` with Synapse's own config parser before it is used.

Synapse's parser also imports every module in ``modules:`` and runs its ``parse_config``, so a bad module config is caught at render time, not at start-up.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import Chat500Error


def check_homeserver_config(path: Path) -> None:
    from synapse.config._base import ConfigError
    from synapse.config.homeserver import HomeServerConfig

    try:
        HomeServerConfig.load_config("chat500 render", ["--config-path", str(path)])
    except ConfigError as err:
        where = " / ".join(str(p) for p in (err.path or ()))
        detail = f"{where}: {err.msg}" if where else err.msg
        raise Chat500Error(f"render: Synapse rejects the rendered homeserver.yaml: {detail}") from err
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise Chat500Error(f"render: Synapse rejects the rendered homeserver.yaml: {err}") from err
