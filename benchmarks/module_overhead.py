"""Cost of our Synapse modules: message send and room join, with and without them, one run.

Three homeservers rendered from the same test spec (minors and retention on) start side by
side: one keeps the rendered ``modules:`` list, one keeps only our policy modules (registration,
minors, retention), one gets ``modules: []``. Rounds rotate between them so machine noise hits
all alike. Reports p50/p95 latency of sequential ``PUT /send`` and ``POST /join``,
messages/s with 8 concurrent senders, and the CPU time Synapse itself logs per request
(``ru=`` in its access log), which other load on a shared machine hardly moves.

    python benchmarks/module_overhead.py [--quick] [--database sqlite|postgres]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.homeserver import Homeserver, homeserver_factory  # noqa: E402

CONCURRENCY = 8


@dataclass
class Samples:
    send_ms: list[float] = field(default_factory=list)
    join_ms: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)
    send_cpu_ms: list[float] = field(default_factory=list)
    join_cpu_ms: list[float] = field(default_factory=list)


_ACCESS = re.compile(r'ru=\((\d+\.\d+)sec, (\d+\.\d+)sec\).*"(PUT|POST) (\S+) HTTP')


def server_cpu(log: str, samples: Samples) -> None:
    """Per-request CPU (user + system) that Synapse logged, for sends and joins."""
    for match in _ACCESS.finditer(log):
        cpu_ms = (float(match.group(1)) + float(match.group(2))) * 1000
        path = match.group(4)
        if match.group(3) == "PUT" and "/send/m.room.message/" in path:
            samples.send_cpu_ms.append(cpu_ms)
        elif match.group(3) == "POST" and "/join/" in path:
            samples.join_cpu_ms.append(cpu_ms)


@dataclass
class Target:
    name: str
    hs: Homeserver
    sender: str  # access token of an ordinary member
    joiner: str  # access token of the user who joins rooms (a consented minor with modules)
    joiner_id: str
    room: str
    samples: Samples = field(default_factory=Samples)


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def setup(hs: Homeserver, name: str, with_minor: bool) -> Target:
    _, pw = hs.create_user("sender")
    sender = hs.login_token("sender", pw)
    joiner_id, jpw = hs.create_user("joiner")
    if with_minor:
        base = f"/_synapse/client/chat500/v1/minors/{joiner_id}"
        assert hs.api("PUT", base, {}).status_code in (200, 201)
        assert (
            hs.api(
                "PUT",
                base + "/consent",
                {
                    "guardian": "Bench Parent",
                    "relation": "parent",
                    "contact": "p@example.org",
                    "evidence": "bench",
                },
            ).status_code
            == 200
        )
    joiner = hs.login_token("joiner", jpw)
    room = hs.api(
        "POST", "/_matrix/client/v3/createRoom", {"invite": [joiner_id]}, token=sender
    ).json()["room_id"]
    assert hs.api("POST", f"/_matrix/client/v3/join/{room}", {}, token=joiner).status_code == 200
    return Target(name, hs, sender, joiner, joiner_id, room)


def send_round(client: httpx.Client, target: Target, count: int) -> None:
    for _ in range(count):
        start = time.perf_counter()
        response = client.put(
            f"{target.hs.base_url}/_matrix/client/v3/rooms/{target.room}/send/m.room.message/"
            f"{uuid.uuid4().hex}",
            json={"msgtype": "m.text", "body": "bench"},
            headers=_headers(target.sender),
        )
        target.samples.send_ms.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()


def join_round(client: httpx.Client, target: Target, count: int) -> None:
    base = target.hs.base_url + "/_matrix/client/v3"
    for _ in range(count):
        room = client.post(
            f"{base}/createRoom",
            json={"invite": [target.joiner_id]},
            headers=_headers(target.sender),
        ).json()["room_id"]
        start = time.perf_counter()
        response = client.post(f"{base}/join/{room}", json={}, headers=_headers(target.joiner))
        target.samples.join_ms.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()


async def _throughput(target: Target, total: int) -> float:
    url = f"{target.hs.base_url}/_matrix/client/v3/rooms/{target.room}/send/m.room.message/"
    async with httpx.AsyncClient(timeout=60, headers=_headers(target.sender)) as client:
        queue = list(range(total))

        async def worker() -> None:
            while queue:
                queue.pop()
                response = await client.put(
                    url + uuid.uuid4().hex, json={"msgtype": "m.text", "body": "bench"}
                )
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return total / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(targets: list[Target], args: argparse.Namespace) -> str:
    base, policy, everything = targets
    rows = []

    def cost(a: float, b: float, higher_is_better: bool) -> str:
        change = (b - a) / a * 100 if a else 0.0
        return f"{-change if higher_is_better else change:+.1f}%"

    def row(label: str, values: list[float], unit: str, higher_is_better: bool = False) -> None:
        a, b, c = values
        rows.append(
            f"| {label} | {a:.2f} {unit} | {b:.2f} {unit} "
            f"({cost(a, b, higher_is_better)}) | {c:.2f} {unit} "
            f"({cost(a, c, higher_is_better)}) |"
        )

    for label, attr in (("send", "send_ms"), ("join", "join_ms")):
        series = [getattr(t.samples, attr) for t in targets]
        row(f"{label} p50", [statistics.median(v) for v in series], "ms")
        row(f"{label} p95", [pct(v, 0.95) for v in series], "ms")
    row(
        "send: Synapse CPU per request (mean)",
        [statistics.fmean(t.samples.send_cpu_ms) for t in targets],
        "ms",
    )
    row(
        "join: Synapse CPU per request (mean)",
        [statistics.fmean(t.samples.join_cpu_ms) for t in targets],
        "ms",
    )
    row(
        f"send throughput ({CONCURRENCY} senders)",
        [statistics.median(t.samples.throughput) for t in targets],
        "msg/s",
        higher_is_better=True,
    )
    del policy, everything
    return "\n".join(
        [
            "# Module overhead (benchmarks/module_overhead.py)",
            "",
            f"Synapse 1.163.2, {args.database}, {platform.python_implementation()} "
            f"{platform.python_version()}, {platform.machine()}, shared 2-core machine. "
            f"{args.rounds} alternating rounds; per round {args.sends} sequential sends, "
            f"{args.joins} joins, {args.burst} concurrent sends.",
            "Policy modules: registration, minors, retention; all modules: the rendered list (also "
            "the license module). With modules the join is by a minor with consent (the most "
            "checks). Without: the same bundle with `modules: []`. Added cost in brackets.",
            "",
            "| measure | without modules | policy modules | all modules |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Samples: {len(base.samples.send_ms)} sends and {len(base.samples.join_ms)} joins per "
            "server.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.rounds, args.sends, args.joins, args.burst = (
        (3, 20, 4, 60) if args.quick else (18, 40, 6, 150)
    )

    spec = {"minors": {"enabled": True}}
    with tempfile.TemporaryDirectory() as tmp, homeserver_factory(Path(tmp)) as make:
        without = make(spec, {"modules": []}, database=args.database, name="without")
        everything = make(spec, database=args.database, name="all")
        rendered = yaml.safe_load((everything.bundle_dir / "synapse/homeserver.yaml").read_text())
        ours = [m for m in rendered["modules"] if "licensing" not in m["module"]]
        policy = make(spec, {"modules": ours}, database=args.database, name="policy")
        targets = [
            setup(without, "without", False),
            setup(policy, "policy", True),
            setup(everything, "all", True),
        ]
        with httpx.Client(timeout=60) as client:
            for target in targets:  # warm caches and JITs alike
                send_round(client, target, 20)
                join_round(client, target, 3)
                target.samples = Samples()
            log_start = {t.name: len(t.hs.log_text()) for t in targets}
            for round_no in range(args.rounds):
                order = targets[round_no % 3 :] + targets[: round_no % 3]
                for target in order:
                    send_round(client, target, args.sends)
                    join_round(client, target, args.joins)
                    target.samples.throughput.append(asyncio.run(_throughput(target, args.burst)))
        for target in targets:
            server_cpu(target.hs.log_text()[log_start[target.name] :], target.samples)
        text = report(targets, args)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
