"""Load test of GET /api/v1/locate or of the vector tiles: a sustained open-loop rate, held or not.

Usage: python scripts/load_locate.py [--what locate|tiles] [--rate 500] [--seconds 60]
                                     [--workers 1 2] [--url URL]

``--what tiles`` asks for the four layers' tiles at z9-z15 over the urban valley (the tile list
of scripts/bench_tiles.py, 40 a zoom), in a shuffled order, as map clients panning would; an
empty tile (204) is an answer, not an error.

Requests leave on a fixed schedule (open loop) whatever the answers do, and latency is counted
from the scheduled time, so a queue building up shows in p99 instead of slowing the sender.
The rate is held when every request was answered without error and the answered rate is within
1 % of the target. Without --url each worker count gets its own `minqing serve --workers N`
(embedded PostGIS, synthetic Lanzhou); the memory of each worker process is reported too.
The client, the HTTP connection and the service start come from scripts/bench_locate_http.py.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_locate_http import (
    ROOT,
    free_port,
    open_loop,
    probe_points,
    start_service,
    targets,
)
from bench_tiles import tiles_over_valley


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes under ``parent`` (the parent itself with one worker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    workers = [int(c) for c in children
               if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return workers or [parent]


def tile_paths(seed: int) -> list[str]:
    """Tile URLs of the four layers over the valley, shuffled."""
    paths = [f"/tiles/{layer}/{z}/{x}/{y}.pbf" for layer in ("small", "medium", "large", "heat")
             for z, x, y in tiles_over_valley(40)]
    np.random.default_rng(seed).shuffle(paths)
    return paths


def run(host: str, port: int, paths: list[str], rate: float, seconds: float) -> bool:
    """One warm-up and one measured open-loop run; prints a row, True when the rate held."""
    asyncio.run(open_loop(host, port, paths, rate, 3.0))
    latencies, errors, elapsed = asyncio.run(open_loop(host, port, paths, rate, seconds))
    values = np.array(latencies) * 1000.0
    answered = len(latencies) / elapsed
    held = errors == 0 and answered >= 0.99 * rate
    print(f"  target {rate:.0f} req/s for {seconds:.0f} s: answered {len(latencies)} "
          f"({answered:.0f} req/s), errors {errors}, p50 {np.percentile(values, 50):.2f} ms, "
          f"p99 {np.percentile(values, 99):.2f} ms, max {values.max():.1f} ms -> "
          f"{'held' if held else 'NOT held'}")
    return held


def main() -> None:
    """Run the load for each worker count; exit 1 if any run did not hold the rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--what", choices=["locate", "tiles"], default="locate")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "out")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    paths = tile_paths(args.seed) if args.what == "tiles" else \
        targets(probe_points(args.fixtures, 50_000, args.seed))
    held = True
    if args.url:
        parsed = httpx.URL(args.url)
        print(f"GET {'/tiles' if args.what == 'tiles' else '/api/v1/locate'} on {args.url}")
        held = run(parsed.host, parsed.port or 80, paths, args.rate, args.seconds)
        sys.exit(0 if held else 1)
    for workers in args.workers:
        port = free_port()
        process = start_service(port, workers)
        try:
            pids = worker_pids(process.pid)
            memory = ", ".join(f"{rss_mib(p):.0f}" for p in pids)
            print(f"minqing serve --workers {workers}: worker RSS {memory} MiB, {args.what}")
            held = run("127.0.0.1", port, paths, args.rate, args.seconds) and held
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    sys.exit(0 if held else 1)


if __name__ == "__main__":
    main()
