"""Push gateway benchmark: notify load against ``chat500-pushgw`` with the fake FCM at 20 ms.

Layout (2 cores): the gateway pinned to core 0; this load generator and the fake FCM on core 1.
Everything on loopback; every run is bounded in time and count. Reports notifications/s
(FCM messages accepted per second), requests/s, p50/p99 of the gateway's answer latency as the
homeserver sees it, and the gateway's CPU (core-seconds per second) and RSS.

    python benchmarks/push_gateway.py [--quick] [--json results.json]

Scenarios: closed-loop saturation at 1 and 5 devices per request; open-loop at a fixed offered
rate (1,000 notifications/s); and a 2% FCM 503 rate (the first send of 2% of tokens fails),
reporting the p99 of the requests that did not hit an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "com.chat500.bench.android"
GATEWAY_CORE, LOAD_CORE = 0, 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Conn(asyncio.Protocol):
    """A keep-alive HTTP/1.1 client connection: one request at a time, one write each."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        length = 0
        for line in self.buf[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        self.buf = self.buf[end + 4 + length:]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def notify_request(port: int, seq: int, devices: int, flaky: bool) -> bytes:
    prefix = "flaky-" if flaky else "tok-"
    devs = ",".join(
        f'{{"app_id":"{APP_ID}","pushkey":"{prefix}{seq}-{d}-{"x" * 140}",'
        f'"pushkey_ts":1700000000,"data":{{"format":"event_id_only"}}}}'
        for d in range(devices))
    body = (f'{{"notification":{{"event_id":"$ev{seq}:bench.example","room_id":'
            f'"!room{seq % 97}:bench.example","prio":"high","counts":{{"unread":{seq % 7}}},'
            f'"devices":[{devs}]}}}}').encode()
    return (f"POST /_matrix/push/v1/notify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


@dataclass
class Run:
    name: str
    devices: int
    seconds: float
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    clean_latencies: list[float] = field(default_factory=list)  # requests with no FCM error
    cpu: float = 0.0
    rss_mb: float = 0.0

    def summary(self) -> dict[str, object]:
        lat = self.clean_latencies if self.clean_latencies else self.latencies
        return {
            "scenario": self.name,
            "devices_per_request": self.devices,
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": round(self.requests / self.seconds, 1),
            "notifications_per_s": round(self.requests * self.devices / self.seconds, 1),
            "p50_ms": round(pct(self.latencies, 50) * 1000, 1),
            "p99_ms": round(pct(self.latencies, 99) * 1000, 1),
            "p99_clean_ms": round(pct(lat, 99) * 1000, 1),
            "gateway_cpu_cores": round(self.cpu / self.seconds, 2),
            "gateway_rss_mb": round(self.rss_mb, 1),
        }


async def run_load(port: int, gw_pid: int, name: str, devices: int, seconds: float,
                   concurrency: int, rate: float | None, flaky_share: float,
                   seq0: int, warmup: float = 1.0) -> Run:
    """Closed loop (``rate`` None: ``concurrency`` requests always in flight) or open loop
    (requests started at ``rate``/s, on up to ``concurrency`` connections)."""
    loop = asyncio.get_running_loop()
    conns: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(concurrency):
        _, proto = await loop.create_connection(Conn, "127.0.0.1", port)
        conns.put_nowait(proto)
    rng = random.Random(seq0)
    result = Run(name, devices, seconds)
    seq = seq0
    measuring = False
    stop_at = loop.time() + warmup + seconds

    async def one(raw: bytes, flaky: bool) -> None:
        conn = await conns.get()
        t0 = time.perf_counter()
        try:
            status = await conn.request(raw)
        finally:
            conns.put_nowait(conn)
        dt = time.perf_counter() - t0
        if measuring:
            result.requests += 1
            if status != 200:
                result.errors += 1
            result.latencies.append(dt)
            if flaky_share and not flaky:
                result.clean_latencies.append(dt)

    async def closed_worker() -> None:
        nonlocal seq
        while loop.time() < stop_at:
            seq += 1
            flaky = rng.random() < flaky_share
            await one(notify_request(port, seq, devices, flaky), flaky)

    async def measure() -> None:
        nonlocal measuring
        await asyncio.sleep(warmup)
        cpu0 = proc_cpu_seconds(gw_pid)
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        result.cpu = proc_cpu_seconds(gw_pid) - cpu0
        result.rss_mb = proc_rss_mb(gw_pid)

    meter = asyncio.ensure_future(measure())
    if rate is None:
        await asyncio.gather(*(closed_worker() for _ in range(concurrency)))
    else:
        tasks = set()
        interval = 1.0 / rate
        next_at = loop.time()
        while loop.time() < stop_at:
            seq += 1
            flaky = rng.random() < flaky_share
            t = asyncio.ensure_future(one(notify_request(port, seq, devices, flaky), flaky))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            next_at += interval
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*tasks)
    await meter
    while not conns.empty():
        c = conns.get_nowait()
        if c.transport is not None:
            c.transport.close()
    return result


def start_fake(workdir: Path, latency_ms: float,
               fail_prefix: str) -> tuple[subprocess.Popen[str], str]:
    cmd = ["taskset", "-c", str(LOAD_CORE), sys.executable, "-m", "tests.fakes.fake_fcm",
           "--latency-ms", str(latency_ms), "--project", "chat500-bench",
           "--write-service-account", str(workdir / "sa.json")]
    if fail_prefix:
        cmd += ["--fail-first-prefix", fail_prefix]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening "):
        raise RuntimeError(f"fake FCM did not start: {line!r}")
    return proc, line.split()[1]


def start_gateway(workdir: Path, fcm_url: str, port: int, fcm_http: str) -> subprocess.Popen[str]:
    cfg = workdir / "pushgw.yaml"
    cfg.write_text(
        f"listen: {{port: {port}}}\nfcm_base_url: {fcm_url}\nfcm_http: {fcm_http}\n"
        f"log_level: warning\napps:\n  - app_id: {APP_ID}\n    service_account: sa.json\n"
        f"    max_in_flight: 4096\n")
    exe = Path(sys.executable).with_name("chat500-pushgw")
    proc = subprocess.Popen(["taskset", "-c", str(GATEWAY_CORE), str(exe), "-c", str(cfg)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"gateway exited: {err}") from None
            time.sleep(0.1)
    raise RuntimeError("gateway did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def scenario(workdir: Path, fcm_http: str, fail_prefix: str, runs: list[dict[str, object]],
             loads: list[tuple[str, int, float, int, float | None, float]]) -> None:
    fake, url = start_fake(workdir, 20.0, fail_prefix)
    port = free_port()
    gw = start_gateway(workdir, url, port, fcm_http)
    try:
        seq = 0
        for name, devices, seconds, conc, rate, flaky in loads:
            seq += 10_000_000
            r = asyncio.run(run_load(port, gw.pid, name, devices, seconds, conc, rate, flaky,
                                     seq))
            summary = {"fcm_http": fcm_http, **r.summary(),
                       "loadavg_1m": round(os.getloadavg()[0], 2)}
            runs.append(summary)
            print(json.dumps(summary), flush=True)
    finally:
        stop(gw)
        stop(fake)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--fcm-http", default="http1", choices=["http1", "h2c"],
                   help="gateway→FCM transport: lean HTTP/1.1 pool, or httpx HTTP/2 (h2c)")
    p.add_argument("--only", default="", help="run only scenarios whose name contains this")
    args = p.parse_args()
    secs = 2.0 if args.quick else args.seconds
    os.sched_setaffinity(0, {LOAD_CORE})
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="pushgw-bench-") as tmp:
        work = Path(tmp)
        def pick(loads: list[tuple[str, int, float, int, float | None, float]]
                 ) -> list[tuple[str, int, float, int, float | None, float]]:
            return [load for load in loads if args.only in load[0]]

        scenario(work, args.fcm_http, "", runs, pick([
            ("saturation c=50, 1 device", 1, secs, 50, None, 0.0),
            ("saturation c=200, 1 device", 1, secs, 200, None, 0.0),
            ("saturation c=50, 5 devices", 5, secs, 50, None, 0.0),
            ("offered 1000/s, 1 device", 1, secs, 200, 1000.0, 0.0),
            ("offered 200 req/s, 5 devices", 5, secs, 200, 200.0, 0.0),
            ("offered 200 req/s, 1 device", 1, secs, 200, 200.0, 0.0),
        ]))
        flaky = pick([("offered 500/s, 2% FCM 503", 1, secs, 200, 500.0, 0.02)])
        if flaky:
            scenario(work, args.fcm_http, "flaky-", runs, flaky)
    info = {"machine": f"{platform.node()} {platform.processor() or platform.machine()} "
                       f"{os.cpu_count()} cores, Python {platform.python_version()}",
            "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
