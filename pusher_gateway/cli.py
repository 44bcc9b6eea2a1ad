"""``chat500-pushgw -c pushgw.yaml``: run the push gateway in the foreground.

The asyncio reactor is installed before anything imports Twisted's reactor: with Twisted 26
each reactor owns its event loop, and firebase-admin/httpx/redis coroutines must run on that
same loop. Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 2 for bad configuration,
1 when it cannot start (port in use).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _install_reactor() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor

    asyncioreactor.install(loop)
    return loop


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Twisted's own errors (unhandled Deferred failures) go to the same stderr log.
    from twisted.python import log as twisted_log

    twisted_log.PythonLoggingObserver(loggerName="twisted").start()
    # Twisted's INFO lines ("... starting on ...") would blur our one "listening" line.
    for noisy in ("twisted", "httpx", "httpcore", "hpack", "h2", "google", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chat500-pushgw",
        description="Matrix Push Gateway → Firebase Cloud Messaging (HTTP v1).")
    parser.add_argument("-c", "--config", required=True, type=Path, help="pushgw.yaml")
    args = parser.parse_args(argv)

    loop = _install_reactor()
    from pusher_gateway.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"chat500-pushgw: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)

    from twisted.internet import error

    from pusher_gateway.gateway import Gateway, reactor

    gateway = Gateway(config, loop)
    try:
        gateway.listen()
    except error.CannotListenError as exc:
        print(f"chat500-pushgw: cannot listen on {exc.interface or '*'}:{exc.port}: "
              f"{exc.socketError}", file=sys.stderr)
        return 1
    reactor.addSystemEventTrigger("before", "shutdown", gateway.shutdown)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
