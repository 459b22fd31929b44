#!/usr/bin/env python3
"""Load and slow clients against `imgpipe serve` (local backend), from outside.

1. Uploads the photo, waits until it is ready.
2. Slow readers: M clients GET the stored PNG variant, read 1 KiB and then
   stop reading for a while. Reports the server's peak RSS meanwhile.
3. Burst: N concurrent distinct on-demand renders (`/img/<id>/webp?w=...`),
   all sent at once. Each is answered 200, or 503 with Retry-After (shed);
   anything else is an error. Reports the p50/p99 of the 200s, the share
   shed, and the server's peak RSS during the burst.
4. Fairness: an attacker from 127.0.0.1 asks for distinct renders as fast
   as it can (`--attackers` loops), while a normal user from 127.0.0.2
   (another loopback address is another client) asks for `--fair` renders
   one after another. Reports the normal user's 200s and p50/p99, and the
   attacker's served and shed counts.
5. `/health` afterwards.

    python3 bench/load.py BINARY IMAGE [--renders 300] [--slow 100] [--stall 20]

Prints one JSON line.
"""
import argparse
import asyncio
import json
import os
import pathlib
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

# The recipe version of the server's settings: variant paths carry it (a
# path without it is a redirect, which is not what is measured here).
RECIPE = ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler:
    """The server's RSS every 50 ms; `peak()` since the last `reset()`."""

    def __init__(self, pid):
        self.pid, self.max, self.stop = pid, 0.0, False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            self.max = max(self.max, rss_mb(self.pid))
            time.sleep(0.05)

    def reset(self):
        self.max = rss_mb(self.pid)

    def peak(self):
        return round(self.max, 1)


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.status, r.read()


async def get(port, path, read_limit=None, stall=0.0, source="127.0.0.1"):
    """One GET on its own connection from `source`: (status, headers, seconds)."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(f"GET {path} HTTP/1.1\r\nhost: load\r\nconnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
    if read_limit is not None:
        await reader.read(read_limit)
        await asyncio.sleep(stall)
    else:
        await reader.read()
    elapsed = time.perf_counter() - start
    writer.close()
    return status, headers, elapsed


async def burst(port, id_, n):
    # Widths of 1000 and up: each render decodes the JPEG at half size.
    return await asyncio.gather(*(get(port, f"/img/{id_}/{RECIPE}/webp?w={1000 + i}") for i in range(n)))


async def slow_readers(port, id_, n, stall):
    return await asyncio.gather(*(get(port, f"/img/{id_}/{RECIPE}/png", read_limit=1024, stall=stall) for _ in range(n)))


async def fairness(port, id_, attackers, fair):
    """The attacker's loops until the normal user's `fair` renders are done."""
    done = asyncio.Event()
    counts = {"served": 0, "shed": 0}
    widths = iter(range(2000, 100000))

    async def attack():
        while not done.is_set():
            status, _, _ = await get(port, f"/img/{id_}/{RECIPE}/webp?w={next(widths)}", source="127.0.0.1")
            counts["served" if status == 200 else "shed"] += 1

    loops = [asyncio.create_task(attack()) for _ in range(attackers)]
    await asyncio.sleep(1.0)  # the queue is the attacker's when the user arrives
    normal = []
    for i in range(fair):
        normal.append(await get(port, f"/img/{id_}/{RECIPE}/webp?w={300 + i}", source="127.0.0.2"))
    done.set()
    await asyncio.gather(*loops)
    return normal, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("image")
    ap.add_argument("--renders", type=int, default=300)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--stall", type=float, default=20.0)
    ap.add_argument("--attackers", type=int, default=24)
    ap.add_argument("--fair", type=int, default=30)
    args = ap.parse_args()
    global RECIPE
    RECIPE = subprocess.check_output([args.binary, "recipe"], text=True).split()[0]
    data = tempfile.mkdtemp(prefix="imgpipe-load-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(data, "serve.log"), "wb")
    proc = subprocess.Popen([args.binary, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data],
                            stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(100):
            try:
                request("GET", base + "/health")
                break
            except Exception:
                time.sleep(0.1)
        image = pathlib.Path(args.image).read_bytes()
        _, body = request("POST", base + "/uploads",
                          json.dumps({"content_type": "image/jpeg", "content_length": len(image)}).encode(),
                          {"Content-Type": "application/json"})
        ticket = json.loads(body)
        request("PUT", ticket["upload"]["url"], image, ticket["upload"]["headers"])
        id_ = ticket["id"]
        for _ in range(600):
            _, body = request("GET", f"{base}/meta/{id_}")
            meta = json.loads(body)
            if meta["status"] != "pending":
                break
            time.sleep(0.2)
        assert meta["status"] == "ready", meta
        sampler = Sampler(proc.pid)
        idle_mb = rss_mb(proc.pid)

        # Slow readers first, from the idle server, then the burst.
        sampler.reset()
        slow = asyncio.run(slow_readers(port, id_, args.slow, args.stall))
        slow_peak = sampler.peak()

        sampler.reset()
        started = time.perf_counter()
        answers = asyncio.run(burst(port, id_, args.renders))
        burst_s = time.perf_counter() - started
        burst_peak = sampler.peak()
        ok = sorted(t for s, _, t in answers if s == 200)
        shed = [h for s, h, _ in answers if s == 503]
        errors = [s for s, _, _ in answers if s not in (200, 503)]
        q = statistics.quantiles(ok, n=100) if len(ok) >= 2 else [ok[0]] * 99 if ok else [0] * 99

        normal, attack = asyncio.run(fairness(port, id_, args.attackers, args.fair))
        normal_ok = sorted(t for s, _, t in normal if s == 200)
        nq = statistics.quantiles(normal_ok, n=100) if len(normal_ok) >= 2 else [max(normal_ok or [0])] * 99
        status, _ = request("GET", base + "/health")
        sampler.stop = True
        print(json.dumps({
            "image": os.path.basename(args.image),
            "png_bytes": meta["variants"]["png"]["bytes"],
            "idle_rss_mb": round(idle_mb, 1),
            "renders": args.renders,
            "ok": len(ok),
            "shed": len(shed),
            "shed_with_retry_after": sum(1 for h in shed if "retry-after" in h),
            "errors": len(errors),
            "p50_s": round(q[49], 2),
            "p99_s": round(q[98], 2),
            "burst_s": round(burst_s, 1),
            "burst_peak_rss_mb": burst_peak,
            "slow_readers": args.slow,
            "slow_ok": sum(1 for s, _, _ in slow if s == 200),
            "stall_s": args.stall,
            "slow_peak_rss_mb": slow_peak,
            "fair_attackers": args.attackers,
            "fair_requests": args.fair,
            "fair_ok": len(normal_ok),
            "fair_p50_s": round(nq[49], 2),
            "fair_p99_s": round(nq[98], 2),
            "attacker_served": attack["served"],
            "attacker_shed": attack["shed"],
            "health_after": status,
        }))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
