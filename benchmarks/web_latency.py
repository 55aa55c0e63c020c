"""Web explorer latency: one slider update on ``fcn-1024``, then 16 simulated users on a real server.

Part 1 (in process): the time from a slider-update request to PNG bytes, as the server measures
it (the ``Server-Timing`` header of ``POST /api/decode``: latent check, decode of one z,
``to_uint8``, PNG encode) and as a whole request through FastAPI's test client (adds JSON
parsing, validation and the ASGI round trip). One torch thread, as ``latentlab serve`` runs.

Part 2 (over HTTP): ``latentlab serve`` in a subprocess on 127.0.0.1; ``--users`` threads, each
one keep-alive connection, behave like the page while a slider is dragged: one decode request
in flight, the next sent at the next animation frame (>= 1/60 s after the previous one was
sent) with the value moved a little; a drag lasts 0.5-2 s, then a pause of 0.2-0.5 s; a
describe request once a second while dragging and once on letting go. Reports decode
latency percentiles, errors and the server's resident memory (VmRSS) over the run. The load
generator shares the machine's cores with the server.

    python benchmarks/web_latency.py                 # trains a 1-epoch fcn-1024 run in a temp folder
    python benchmarks/web_latency.py --run runs/fcn1024 --users 16 --seconds 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

FRAME_S = 1 / 60  # the page sends at most one decode per animation frame
DESCRIBE_EVERY_S = 1.0  # and measures the change at most this often during a long drag


def machine_line() -> str:
    import torch

    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {os.cpu_count()} CPUs, load average {load} (1/5/15 min), "
            f"torch {torch.__version__}")


def percentiles(ms: list[float]) -> str:
    if not ms:
        return "no samples"
    a = np.asarray(ms)
    return (f"p50 {np.percentile(a, 50):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, "
            f"p99 {np.percentile(a, 99):.1f} ms, max {a.max():.1f} ms (n={len(a)})")


def make_run(folder: Path, n_images: int, epochs: int) -> Path:
    """A briefly trained fcn-1024 run on generated faces (latency does not depend on how well)."""
    from latentlab.allocator import keep_freed_memory
    from latentlab.data import BatchSpec, load_source
    from latentlab.models import preset_config
    from latentlab.train.api import train_run
    from latentlab.train.trainer import TrainConfig

    keep_freed_memory()  # as the `latentlab` entry point does
    t0 = time.perf_counter()
    train_run(preset_config("fcn-1024"), load_source(f"faces:{n_images}"), BatchSpec(),
              TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, seed=0), folder, progress=False)
    print(f"trained fcn-1024 on faces:{n_images} for {epochs} epoch(s) in {time.perf_counter() - t0:.0f} s")
    return folder


# ---------------------------------------------------------------------------------- part 1


def in_process(run: Path, requests: int) -> dict[str, list[float]]:
    import torch
    from fastapi.testclient import TestClient

    from latentlab.web.app import create_app

    t0 = time.perf_counter()
    app = create_app(run)
    print(f"create_app (load run, encode data, rank, score): {time.perf_counter() - t0:.1f} s")
    torch.set_num_threads(1)
    client = TestClient(app)
    info = client.get("/api/info").json()
    z = np.array(client.get("/api/image/0").json()["z"])
    lo, hi = np.array(info["lo"]), np.array(info["hi"])
    server, whole = [], []
    for i in range(requests + 10):
        d = [r["dim"] for r in info["ranking"][:16]][i % 16]
        z[d] = lo[d] + (hi[d] - lo[d]) * ((i * 0.07) % 1.0)  # a slider moving through its range
        t = time.perf_counter()
        response = client.post("/api/decode", json={"z": z.tolist()})
        elapsed = (time.perf_counter() - t) * 1000
        assert response.status_code == 200 and response.content[:4] == b"\x89PNG", response.text
        if i >= 10:  # warm-up
            whole.append(elapsed)
            server.append(float(re.search(r"dur=([\d.]+)", response.headers["server-timing"]).group(1)))
    return {"server": server, "whole": whole}


# ---------------------------------------------------------------------------------- part 2


def start_server(run: Path) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", "latentlab.cli.app", "serve", str(run), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
            return proc, int(m.group(1))
    raise RuntimeError(f"server did not start (exit {proc.wait()})")


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class User(threading.Thread):
    """One browser tab: drags a slider for 0.5-2 s, lets go for 0.2-0.5 s, grabs another, for ``until``.

    While dragging: one decode in flight, the next sent at the next animation frame; a describe
    request once a second during a drag and once on letting go (as app.js does).
    """

    def __init__(self, port: int, info: dict[str, Any], z: list[float], until: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.port, self.info, self.z0, self.until = port, info, np.array(z), until
        self.rng = random.Random(seed)
        self.decode_ms: list[float] = []
        self.describe_ms: list[float] = []
        self.errors: list[str] = []
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: dict[str, Any], into: list[float]) -> None:
        t = time.perf_counter()
        try:
            self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return
        if response.status != 200:
            self.errors.append(f"{path}: {response.status} {data[:100]!r}")
        into.append((time.perf_counter() - t) * 1000)

    def run(self) -> None:
        lo, hi = np.array(self.info["lo"]), np.array(self.info["hi"])
        dims = [r["dim"] for r in self.info["ranking"][:16]]
        z, step = self.z0.copy(), (hi - lo) / 120
        while time.perf_counter() < self.until:
            dim, direction = self.rng.choice(dims), self.rng.choice((-1, 1))
            end = min(self.until, time.perf_counter() + self.rng.uniform(0.5, 2.0))
            last_describe = time.perf_counter()
            while (sent := time.perf_counter()) < end:
                z[dim] = float(np.clip(z[dim] + direction * step[dim], lo[dim], hi[dim]))
                self.post("/api/decode", {"z": z.tolist()}, self.decode_ms)
                if time.perf_counter() - last_describe >= DESCRIBE_EVERY_S:
                    last_describe = time.perf_counter()
                    self.post("/api/describe", {"z_ref": self.z0.tolist(), "z": z.tolist()}, self.describe_ms)
                time.sleep(max(0.0, FRAME_S - (time.perf_counter() - sent)))
            self.post("/api/describe", {"z_ref": self.z0.tolist(), "z": z.tolist()}, self.describe_ms)
            time.sleep(self.rng.uniform(0.2, 0.5))
        self.conn.close()


def over_http(run: Path, users: int, seconds: float) -> None:
    proc, port = start_server(run)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/info")
        info = json.loads(conn.getresponse().read())
        conn.request("GET", "/api/image/0")
        z = json.loads(conn.getresponse().read())["z"]
        conn.close()
        rss, cpu0, own0 = [rss_mib(proc.pid)], cpu_s(proc.pid), cpu_s(os.getpid())
        until = time.perf_counter() + seconds
        crowd = [User(port, info, z, until, seed=i) for i in range(users)]
        for u in crowd:
            u.start()
        while any(u.is_alive() for u in crowd):
            time.sleep(1.0)
            rss.append(rss_mib(proc.pid))
        cpu, own = cpu_s(proc.pid) - cpu0, cpu_s(os.getpid()) - own0
        decode = [ms for u in crowd for ms in u.decode_ms]
        describe = [ms for u in crowd for ms in u.describe_ms]
        errors = [e for u in crowd for e in u.errors]
        print(f"\n{users} users for {seconds:.0f} s against latentlab serve on 127.0.0.1:")
        print(f"  decode:   {percentiles(decode)}; {len(decode) / seconds:.0f} requests/s")
        print(f"  describe: {percentiles(describe)}")
        print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
        per_request = 1000 * cpu / max(1, len(decode) + len(describe))
        print(f"  server CPU {cpu:.1f} s = {per_request:.1f} ms per request; "
              f"load generator CPU {own:.1f} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"  server RSS: start {rss[0]:.0f} MiB, end {rss[-1]:.0f} MiB, max {max(rss):.0f} MiB "
              f"(sampled every second: {' '.join(f'{r:.0f}' for r in rss)})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an fcn-1024 run folder (default: train one briefly)")
    parser.add_argument("--images", type=int, default=1024, help="faces to train on when no --run is given")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--requests", type=int, default=300, help="slider updates timed in part 1")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"python {' '.join(sys.argv)}\n{machine_line()}")
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or make_run(Path(tmp) / "fcn-1024", args.images, args.epochs)
        times = in_process(run, args.requests)
        print(f"slider update on fcn-1024, server time request -> PNG bytes: {percentiles(times['server'])}")
        print(f"  whole request through the ASGI app (test client): {percentiles(times['whole'])}")
        over_http(run, args.users, args.seconds)
        print(machine_line())


if __name__ == "__main__":
    main()
