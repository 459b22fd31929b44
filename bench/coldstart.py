#!/usr/bin/env python3
"""Lambda cold-start proxy for the `http` handler: from process start to the
first answered request. A Lambda Runtime API on loopback hands the binary
one Function URL event (a request the router answers without storage I/O)
and stops the clock when the response arrives; the process is then killed.
The AWS SDK clients are built as in Lambda (credentials from the
environment, no network at start-up).

    python3 bench/coldstart.py BINARY [--reps 20]

Prints one JSON line: median and minimum milliseconds over the runs.
"""
import argparse
import http.server
import json
import pathlib
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENT = json.loads((ROOT / "tests/fixtures/lambda/function-url-request.json").read_text())
# A malformed id: the router answers 400 before touching storage.
EVENT["rawPath"] = EVENT["requestContext"]["http"]["path"] = "/img/not-an-id/webp"


class Runtime(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answered = None  # set per run: (threading.Event, list for the time)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        if self.server.served:
            # One invocation per run: park the poll until the process dies.
            time.sleep(30)
            return
        self.server.served = True
        body = json.dumps(EVENT).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", "cold-start-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-http")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.result = (time.perf_counter(), self.path, body)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.done.set()


def once(binary):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    server.daemon_threads = True
    server.served, server.result, server.done = False, None, threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "imgpipe-http",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "cold",
        "AWS_SECRET_ACCESS_KEY": "start",
        "AWS_EC2_METADATA_DISABLED": "true",
        "IMGPIPE_HANDLER": "http",
        "IMGPIPE_BACKEND": "aws",
        "IMGPIPE_RAW_BUCKET": "raw",
        "IMGPIPE_PROCESSED_BUCKET": "processed",
        "IMGPIPE_TABLE": "images",
        "IMGPIPE_PUBLIC_BASE_URL": "https://images.example.com",
        "RUST_LOG": "warn",
    }
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not server.done.wait(20):
            raise SystemExit(f"no response within 20 s: {proc.stderr.read1(4096).decode(errors='replace')}")
        end, path, body = server.result
        if not path.endswith("/response"):
            raise SystemExit(f"the handler reported an error: {path} {body[:300]!r}")
        status = json.loads(body).get("statusCode")
        if status != 400:
            raise SystemExit(f"expected a 400 answer, got {status}: {body[:300]!r}")
        return (end - start) * 1000
    finally:
        proc.kill()
        proc.wait()
        server.shutdown()
        server.server_close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    once(args.binary)  # warm the page cache, as a provisioned sandbox would be
    ms = [once(args.binary) for _ in range(args.reps)]
    print(json.dumps({"reps": len(ms), "median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1)}))


if __name__ == "__main__":
    sys.exit(main())
