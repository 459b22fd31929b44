#!/usr/bin/env python3
"""Count the AWS requests and log bytes behind one upload and one on-demand
miss, for the cost table in BENCHMARKS.md.

The AWS backend (`serve --backend aws` for the HTTP function's router and
`worker` for the events function's) runs against a moto server through a
counting proxy, which records every request by service and operation. The
script drives the upload flow as a client would (POST /uploads, the
presigned PUT, /meta until ready), then misses (`/img/<id>/webp?w=N`,
distinct widths) and one /meta read. Processes log as JSON at the default
level, as the functions do; their stderr bytes are counted per phase.

    python3 bench/requests.py BINARY IMAGE MOTO_PYTHON [--uploads 3] [--misses 3]

Prints one JSON line: per upload and per miss, requests by operation, and
log bytes per phase.
"""
import argparse
import collections
from collections import Counter
import http.client
import http.server
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The recipe version of the server's settings: variant paths carry it (a
# path without it is a redirect, which is not what is measured here).
RECIPE = ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def operation(method, path, headers):
    """`service.Operation` of one request, as AWS bills it."""
    target = headers.get("X-Amz-Target", "")
    if target:
        service, op = target.split(".", 1)
        return {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs", "AmazonSSM": "ssm"}.get(service, service) + "." + op
    path, _, query = path.partition("?")
    if "Action=" in query:  # SQS's query protocol
        return "sqs." + dict(p.split("=", 1) for p in query.split("&") if "=" in p)["Action"]
    parts = [p for p in path.split("/") if p]
    if method == "GET" and len(parts) <= 1:
        return "s3.ListObjects"
    return "s3." + {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject",
                    "POST": "PostObject"}.get(method, method)


class Proxy(http.server.BaseHTTPRequestHandler):
    """Forward to moto; count each request by operation (and empty polls)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def forward(self):
        try:
            self.relay()
        except (ConnectionError, OSError):
            pass  # moto or the client went away (at the end of the run)

    def relay(self):
        data = self.body()
        op = operation(self.command, self.path, self.headers)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
        if data or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(data))
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=60)
        conn.request(self.command, self.path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        if op == "sqs.ReceiveMessage" and b"MessageId" not in payload:
            op = "sqs.ReceiveMessage (empty)"
        with self.server.lock:
            self.server.counts[op] += 1
            if op.startswith("dynamodb."):
                # Write units follow the item's size, read units the answer's.
                self.server.counts[op + " bytes"] += len(data) if "Get" not in op and "Query" not in op else len(payload)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward


def wait_http(url, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, dict(r.headers), r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("image")
    ap.add_argument("moto_python")
    ap.add_argument("--uploads", type=int, default=3)
    ap.add_argument("--misses", type=int, default=3)
    args = ap.parse_args()
    global RECIPE
    RECIPE = subprocess.check_output([args.binary, "recipe"], text=True).split()[0]
    image = pathlib.Path(args.image).read_bytes()
    work = pathlib.Path(tempfile.mkdtemp(prefix="imgpipe-requests-"))
    procs = []
    try:
        moto_port = free_port()
        procs.append(subprocess.Popen([args.moto_python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        moto = f"http://127.0.0.1:{moto_port}"
        wait_http(moto + "/moto-api/")
        proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
        proxy.daemon_threads = True
        proxy.upstream, proxy.lock, proxy.counts = moto_port, threading.Lock(), collections.Counter()
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        stack = json.loads(subprocess.check_output([args.moto_python, str(ROOT / "tests/browser/aws_stack.py"), moto, base]))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true", "IMGPIPE_S3_PATH_STYLE": "true",
            "IMGPIPE_BACKEND": "aws", "IMGPIPE_RAW_BUCKET": stack["raw"], "IMGPIPE_PROCESSED_BUCKET": stack["processed"],
            "IMGPIPE_TABLE": stack["table"], "IMGPIPE_QUEUE_URL": stack["queue_url"],
            "IMGPIPE_PUBLIC_BASE_URL": base, "IMGPIPE_LOG_FORMAT": "json",
        }
        logs = {name: open(work / f"{name}.log", "wb") for name in ("serve", "worker")}
        procs.append(subprocess.Popen([args.binary, "serve", "--backend", "aws", "--addr", f"127.0.0.1:{port}"],
                                      env=env, stdout=logs["serve"], stderr=logs["serve"]))
        procs.append(subprocess.Popen([args.binary, "worker"], env=env, stdout=logs["worker"], stderr=logs["worker"]))
        wait_http(base + "/health")
        time.sleep(1)

        def snapshot():
            with proxy.lock:
                counts = collections.Counter(proxy.counts)
            return counts, {n: (work / f"{n}.log").stat().st_size for n in logs}

        def delta(before, after):
            """(requests, log bytes, mean bytes per DynamoDB request) between two snapshots."""
            (c0, l0), (c1, l1) = before, after
            counts = c1 - c0
            sizes = {op[:-6]: round(n / counts[op[:-6]]) for op, n in counts.items() if op.endswith(" bytes")}
            return Counter({op: n for op, n in counts.items() if not op.endswith(" bytes")}), \
                {n: l1[n] - l0[n] for n in l0}, sizes

        phases = {}
        start = snapshot()
        ids = []
        post_ms, meta_ms = [], []
        for _ in range(args.uploads):
            t0 = time.perf_counter()
            _, _, body = request("POST", base + "/uploads", json.dumps({"content_type": "image/jpeg", "content_length": len(image)}).encode(),
                                 {"Content-Type": "application/json"})
            post_ms.append((time.perf_counter() - t0) * 1000)
            ticket = json.loads(body)
            request(ticket["upload"]["method"], ticket["upload"]["url"], image, ticket["upload"]["headers"])
            ids.append(ticket["id"])
        upload_polls = 0
        for id_ in ids:
            for _ in range(600):
                upload_polls += 1
                _, _, body = request("GET", f"{base}/meta/{id_}")
                if json.loads(body)["status"] != "pending":
                    break
                time.sleep(0.5)
            assert json.loads(body)["status"] == "ready", body
        time.sleep(1)
        counts, logged, sizes = delta(start, snapshot())
        counts["dynamodb.GetItem"] -= upload_polls  # the client's polling, counted below as a /meta read
        phases["upload"] = (counts, logged, sizes)

        start = snapshot()
        for id_ in ids[:1]:
            t0 = time.perf_counter()
            request("GET", f"{base}/meta/{id_}")
            meta_ms.append((time.perf_counter() - t0) * 1000)
        phases["meta"] = delta(start, snapshot())

        start = snapshot()
        for i in range(args.misses):
            status, headers, _ = request("GET", f"{base}/img/{ids[i % len(ids)]}/{RECIPE}/webp?w={600 + i}")
            assert status == 200, status
        time.sleep(1)
        phases["miss"] = delta(start, snapshot())

        per = {"upload": args.uploads, "meta": 1, "miss": args.misses}
        out = {"uploads": args.uploads, "misses": args.misses, "image_bytes": len(image),
               # The http function's calls, timed at the client against moto: an upper bound.
               "http_ms": {"post_uploads": round(statistics.median(post_ms), 1), "meta": round(statistics.median(meta_ms), 1)}}
        for phase, (counts, logged, sizes) in phases.items():
            out[phase] = {
                "requests": {op: round(n / per[phase], 2) for op, n in sorted(counts.items())
                             if n > 0 and op != "sqs.ReceiveMessage (empty)"},
                "dynamodb_bytes": sizes,
                "log_bytes": {n: round(b / per[phase]) for n, b in logged.items()},
            }
        out["stored_bytes_per_upload"] = stored_bytes(args.moto_python, moto, stack, ids)
        print(json.dumps(out))
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def stored_bytes(moto_python, moto, stack, ids):
    """Bytes in the raw and processed buckets per upload, renders excluded."""
    script = (
        "import boto3, json, sys\n"
        "s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',"
        " aws_access_key_id='t', aws_secret_access_key='t')\n"
        "out = {}\n"
        "for name in sys.argv[2:]:\n"
        "    objs = s3.list_objects_v2(Bucket=name).get('Contents', [])\n"
        "    out[name] = [[o['Key'], o['Size']] for o in objs]\n"
        "print(json.dumps(out))\n"
    )
    listing = json.loads(subprocess.check_output([moto_python, "-c", script, moto, stack["raw"], stack["processed"]]))
    raw = sum(size for _, size in listing[stack["raw"]]) / len(ids)
    # img/<id>/<recipe>/<variant>; renders are img/<id>/<recipe>/<format>/<options>.
    variants = sum(size for key, size in listing[stack["processed"]] if key.count("/") == 3)
    return {"raw": round(raw), "variants_and_meta": round(variants / len(ids))}


if __name__ == "__main__":
    sys.exit(main())
