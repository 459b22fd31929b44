#!/usr/bin/env python3
"""A soak of `imgpipe serve` (local backend): mixed uploads, renders, hits
and slow clients at a bounded rate, with the server SIGKILLed and restarted
twice in the middle, then an audit.

Load, all at once for DURATION seconds:
- uploads: a generated JPEG or PNG (random size up to 2400 px) every
  UPLOAD_EVERY s; one in ten is cut short, and must end `failed`;
- renders: a random on-demand size of a ready image, 4 a second;
- hits: a standard variant of a ready image, 10 a second;
- slow clients: every 30 s, 5 readers of a PNG variant that read 1 KiB and
  stall 20 s.

At one third and two thirds of the run the server is SIGKILLed and started
again on the same data dir and port. RSS is sampled every second.

Audit, once the load stops: every upload whose PUT was answered 200 ends
`ready` or `failed` (the cut ones `failed`), and every variant of every ready
item is served whole, at the length its metadata records.

    python3 bench/soak.py BINARY [--duration 1800]     (Pillow needed)

Prints one JSON line.
"""
import argparse
import asyncio
import io
import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from PIL import Image

# The recipe version of the server's settings: variant paths carry it (a
# path without it is a redirect, which is not what is measured here).
RECIPE = ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, headers=None, timeout=120):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def image_bytes(rng):
    w, h = rng.randint(64, 2400), rng.randint(64, 2400)
    img = Image.effect_noise((w, h), rng.randint(10, 80)).convert("RGB")
    img = Image.blend(img, Image.linear_gradient("L").resize((w, h)).convert("RGB"), 0.5)
    out = io.BytesIO()
    if rng.random() < 0.7:
        img.save(out, "JPEG", quality=rng.randint(60, 95))
        return out.getvalue(), "image/jpeg"
    img.save(out, "PNG", compress_level=1)
    return out.getvalue(), "image/png"


class Server:
    def __init__(self, binary, data, port):
        self.binary, self.data, self.port = binary, data, port
        self.log = open(os.path.join(data, "serve.log"), "ab")
        self.proc = None
        self.rss = []  # (seconds since start, MB)

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--addr", f"127.0.0.1:{self.port}", "--data-dir", self.data],
            stdout=self.log, stderr=self.log, env={**os.environ, "RUST_LOG": "warn"})
        for _ in range(300):
            try:
                if request("GET", f"http://127.0.0.1:{self.port}/health", timeout=2)[0] == 200:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise SystemExit("the server did not come up")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def sample(self, t0, stop):
        while not stop.is_set():
            try:
                for line in open(f"/proc/{self.proc.pid}/status"):
                    if line.startswith("VmRSS:"):
                        self.rss.append((round(time.time() - t0), int(line.split()[1]) / 1024))
            except OSError:
                pass
            time.sleep(1)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {"upload": [], "render": [], "hit": [], "slow": []}
        self.status = {}
        self.errors = {}

    def record(self, kind, status, seconds):
        with self.lock:
            self.status.setdefault(kind, {}).setdefault(str(status), 0)
            self.status[kind][str(status)] += 1
            if status == 200:
                self.latency[kind].append(seconds)

    def error(self, kind, e):
        with self.lock:
            key = f"{kind}: {type(e).__name__}"
            self.errors[key] = self.errors.get(key, 0) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--upload-every", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    global RECIPE
    RECIPE = subprocess.check_output([args.binary, "recipe"], text=True).split()[0]
    rng = random.Random(args.seed)
    data = tempfile.mkdtemp(prefix="imgpipe-soak-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(args.binary, data, port)
    server.start()
    stats = Stats()
    uploads = []  # (id, cut short?)
    ready = []
    stop = threading.Event()
    t0 = time.time()
    threading.Thread(target=server.sample, args=(t0, stop), daemon=True).start()

    def timed(kind, fn):
        start = time.perf_counter()
        try:
            status = fn()
            stats.record(kind, status, time.perf_counter() - start)
            return status
        except Exception as e:  # connection refused while the server restarts, and the like
            stats.error(kind, e)
            return None

    def uploader():
        local = random.Random(args.seed + 1)
        while not stop.is_set():
            body, ct = image_bytes(local)
            cut = local.random() < 0.1
            if cut:
                body = body[: len(body) // 2]

            def go():
                status, answer = request("POST", base + "/uploads",
                                         json.dumps({"content_type": ct, "content_length": len(body)}).encode(),
                                         {"Content-Type": "application/json"})
                if status != 201:
                    return status
                ticket = json.loads(answer)
                status, _ = request("PUT", ticket["upload"]["url"], body, ticket["upload"]["headers"])
                if status == 200:
                    uploads.append((ticket["id"], cut))
                return status

            timed("upload", go)
            time.sleep(args.upload_every)

    def watcher():
        seen = set()
        while not stop.is_set():
            for id_, cut in list(uploads):
                if id_ in seen:
                    continue
                try:
                    status, body = request("GET", f"{base}/meta/{id_}", timeout=10)
                except Exception:
                    continue
                if status == 200 and json.loads(body)["status"] == "ready":
                    seen.add(id_)
                    ready.append(id_)
                elif status == 200 and json.loads(body)["status"] == "failed":
                    seen.add(id_)
            time.sleep(1)

    def renderer():
        local = random.Random(args.seed + 2)
        while not stop.is_set():
            if ready:
                id_ = local.choice(ready)
                fmt = local.choice(["webp", "jpeg", "png"])
                timed("render", lambda: request("GET", f"{base}/img/{id_}/{RECIPE}/{fmt}?w={local.randint(50, 1200)}")[0])
            time.sleep(0.25)

    def hitter():
        local = random.Random(args.seed + 3)
        while not stop.is_set():
            if ready:
                id_ = local.choice(ready)
                v = local.choice(["jpeg", "jpeg-low", "webp", "thumb"])
                timed("hit", lambda: request("GET", f"{base}/img/{id_}/{RECIPE}/{v}")[0])
            time.sleep(0.1)

    async def slow_one(id_):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /img/{id_}/{RECIPE}/png HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.read(1024)
        await asyncio.sleep(20)
        writer.close()
        return int(head.split()[1]), time.perf_counter() - start

    def slow():
        while not stop.wait(30):
            if not ready:
                continue
            ids = [random.choice(ready) for _ in range(5)]

            async def all_():
                return await asyncio.gather(*(slow_one(i) for i in ids), return_exceptions=True)

            for r in asyncio.run(all_()):
                if isinstance(r, Exception):
                    stats.error("slow", r)
                else:
                    stats.record("slow", r[0], r[1])

    threads = [threading.Thread(target=f, daemon=True) for f in (uploader, watcher, renderer, hitter, slow)]
    for t in threads:
        t.start()
    restarts = []
    for fraction in (1 / 3, 2 / 3):
        time.sleep(max(0.0, t0 + args.duration * fraction - time.time()))
        server.kill()
        restarts.append(round(time.time() - t0))
        time.sleep(1)
        server.start()
    time.sleep(max(0.0, t0 + args.duration - time.time()))
    stop.set()
    for t in threads:
        t.join(timeout=60)

    # Audit.
    deadline = time.time() + 300
    final = {}
    for id_, cut in uploads:
        while True:
            status, body = request("GET", f"{base}/meta/{id_}")
            meta = json.loads(body) if status == 200 else None
            if meta and meta["status"] != "pending":
                final[id_] = (meta, cut)
                break
            if time.time() > deadline:
                final[id_] = (meta, cut)
                break
            time.sleep(1)
    lost = [i for i, (m, _) in final.items() if m is None]
    stuck = [i for i, (m, _) in final.items() if m is not None and m["status"] == "pending"]
    wrong = [i for i, (m, cut) in final.items() if m and m["status"] != "pending" and (m["status"] == "failed") != cut]
    bad_variants = []
    checked = 0
    for id_, (m, _) in final.items():
        if not m or m["status"] != "ready":
            continue
        for name, v in m["variants"].items():
            status, body = request("GET", f"{base}/img/{id_}/{RECIPE}/{name}")
            checked += 1
            if status != 200 or len(body) != v["bytes"]:
                bad_variants.append(f"{id_}/{name}: {status}, {len(body)} of {v['bytes']} bytes")
    health = request("GET", base + "/health")[0]
    server.proc.terminate()
    server.proc.wait(30)

    def q(xs, p):
        return round(statistics.quantiles(xs, n=100)[p - 1], 3) if len(xs) >= 2 else None

    rss = [mb for _, mb in server.rss]
    print(json.dumps({
        "duration_s": args.duration,
        "restarts_at_s": restarts,
        "uploads_accepted": len(uploads),
        "cut_short": sum(1 for _, c in uploads if c),
        "ready": sum(1 for m, _ in final.values() if m and m["status"] == "ready"),
        "failed": sum(1 for m, _ in final.values() if m and m["status"] == "failed"),
        "lost": len(lost),
        "stuck_pending": len(stuck),
        "wrong_outcome": len(wrong),
        "variants_checked": checked,
        "bad_variants": bad_variants[:10],
        "bad_variant_count": len(bad_variants),
        "health_after": health,
        "status": stats.status,
        "client_errors": stats.errors,
        "latency_s": {k: {"n": len(v), "p50": q(v, 50), "p99": q(v, 99)} for k, v in stats.latency.items()},
        "rss_mb": {"max": round(max(rss), 1) if rss else None, "last": round(rss[-1], 1) if rss else None,
                   "by_minute": [round(max(mb for t, mb in server.rss if t // 60 == m), 1)
                                 for m in sorted({t // 60 for t, _ in server.rss})]},
    }))


if __name__ == "__main__":
    main()
