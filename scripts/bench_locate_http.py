"""Benchmark of GET /api/v1/locate over HTTP on loopback: latency and throughput.

Usage: python scripts/bench_locate_http.py [--seconds S] [--workers 1 2] [--url URL]

Without --url it starts `minqing serve --workers N` (embedded PostGIS, synthetic Lanzhou) on a
free port for each N and stops it at the end. Closed loop at 1, 8 and 64 concurrent clients
(each sends its next request when the last one answered): p50 / p99 latency and requests per
second. Then an open loop at a fixed rate (500 req/s by default): requests leave on schedule
whatever the answers do, and latency is counted from the scheduled time, so a stalled server
cannot hide its queue. The client runs in this process on the same machine (a lean keep-alive
HTTP/1.1 client) and its own CPU use competes with the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(port: int, workers: int) -> subprocess.Popen[bytes]:
    """`minqing serve` on ``port``, waited for until /health answers."""
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "minqing"), "serve", "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"minqing serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("minqing serve did not answer /health within 300 s")


def probe_points(fixtures: Path, n: int, seed: int) -> list[tuple[float, float]]:
    """``n`` positions drawn from the fixture events (where real requests come from)."""
    with (fixtures / "events.csv").open(encoding="utf-8") as f:
        rows = [(float(r["true_lon"]), float(r["true_lat"])) for r in csv.DictReader(f)]
    pick = np.random.default_rng(seed).integers(0, len(rows), n)
    return [rows[i] for i in pick]


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    values = np.array(latencies) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough to GET and read one answer.

    httpx's async pool costs more per request than the service does; this keeps the client's
    share of the CPU small so the figures describe the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect to ``host:port``."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def get(self, target: str) -> int:
        """Send GET ``target`` and read the whole answer; returns the status code."""
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


def targets(points: list[tuple[float, float]]) -> list[str]:
    """Request targets for the points."""
    return [f"/api/v1/locate?lon={lon:.7f}&lat={lat:.7f}" for lon, lat in points]


async def closed_loop(host: str, port: int, paths: list[str], clients: int,
                      seconds: float) -> tuple[list[float], int, float]:
    """``clients`` loops each sending the next request when the previous one answered."""
    latencies: list[float] = []
    errors = 0
    connections = [await Connection.open(host, port) for _ in range(clients)]
    stop = time.perf_counter() + seconds

    async def one_client(k: int) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < stop:
            t = time.perf_counter()
            status = await connections[k].get(paths[i % len(paths)])
            latencies.append(time.perf_counter() - t)
            errors += status not in (200, 204, 404)  # 404 outside every grid, 204 an empty tile
            i += clients

    began = time.perf_counter()
    await asyncio.gather(*(one_client(k) for k in range(clients)))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return latencies, errors, elapsed


async def open_loop(host: str, port: int, paths: list[str], rate: float,
                    seconds: float) -> tuple[list[float], int, float]:
    """Requests sent on a fixed schedule; latency counted from the scheduled time."""
    latencies: list[float] = []
    errors = 0
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        idle.put_nowait(await Connection.open(host, port))

    async def one(scheduled: float, path: str) -> None:
        nonlocal errors
        connection = await idle.get()
        status = await connection.get(path)
        latencies.append(time.perf_counter() - scheduled)
        errors += status not in (200, 204, 404)  # 404 outside every grid, 204 an empty tile
        idle.put_nowait(connection)

    began = time.perf_counter()
    tasks = []
    for k in range(int(rate * seconds)):
        scheduled = began + k / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, paths[k % len(paths)])))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, errors, elapsed


def run_rows(host: str, port: int, paths: list[str], seconds: float, rate: float,
             label: str) -> None:
    """Closed loop at 1, 8, 64 clients, then the open loop at ``rate``; one printed row each."""
    asyncio.run(closed_loop(host, port, paths, 8, 2.0))  # warm up connections and caches
    rows = [(f"{c} clients (closed)", closed_loop(host, port, paths, c, seconds))
            for c in (1, 8, 64)]
    rows.append((f"{rate:.0f} req/s (open)", open_loop(host, port, paths, rate, seconds)))
    for name, job in rows:
        latencies, errors, elapsed = asyncio.run(job)
        p50, p99 = percentiles(latencies)
        print(f"{label:10s} {name:22s} {len(latencies) / elapsed:8.0f} {p50:8.2f} {p99:8.2f} "
              f"{errors:7d}")


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to start the service with (without --url)")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "out")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()

    paths = targets(probe_points(args.fixtures, 50_000, args.seed))
    print(f"GET /api/v1/locate, {args.seconds:.0f} s per row, client in this process")
    print(f"{'service':10s} {'load':22s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'errors':>7s}")
    if args.url:
        parsed = httpx.URL(args.url)
        run_rows(parsed.host, parsed.port or 80, paths, args.seconds, args.rate, "given")
        return
    for workers in args.workers:
        port = free_port()
        process = start_service(port, workers)
        try:
            run_rows("127.0.0.1", port, paths, args.seconds, args.rate, f"{workers} worker")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
