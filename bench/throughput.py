#!/usr/bin/env python3
"""Cache-hit throughput: `imgpipe serve` answering GET /img/<id>/webp (a
stored variant) against nginx serving the same bytes from disk, both driven
by wrk with the same connections and duration on this machine.

    python3 bench/throughput.py BINARY IMAGE [--connections 64] [--seconds 10]

Uploads IMAGE through the real API (POST /uploads, presigned PUT), waits for
`ready`, then runs wrk against each server in turn. Prints one JSON line.
"""
import argparse
import json
import pathlib
import re
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def request(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


def wrk(url, connections, seconds):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": rps,
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("image")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    body = pathlib.Path(args.image).read_bytes()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="imgpipe-throughput-"))
    port = free_port()
    serve = subprocess.Popen(
        [args.binary, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", str(tmp / "data")],
        env={"PATH": "/usr/bin:/bin", "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    nginx = None
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        _, created = request(f"{base}/uploads", "POST",
                             json.dumps({"content_type": "image/jpeg", "content_length": len(body)}).encode(),
                             {"Content-Type": "application/json"})
        created = json.loads(created)
        up = created["upload"]
        request(up["url"], "PUT", body, up["headers"])
        for _ in range(600):
            meta = json.loads(request(f"{base}/meta/{created['id']}")[1])
            if meta["status"] != "pending":
                break
            time.sleep(0.1)
        if meta["status"] != "ready":
            raise SystemExit(f"upload ended {meta['status']}: {meta.get('error')}")
        url = meta["variants"]["webp"]["url"]  # under the recipe version
        _, webp = request(url)

        # nginx's workers drop privileges: let them read the file.
        tmp.chmod(0o755)
        root = tmp / "www"
        root.mkdir(mode=0o755)
        (root / "webp").write_bytes(webp)
        (root / "webp").chmod(0o644)
        nport = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(f"""
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types {{ image/webp webp; }}
  default_type image/webp;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  server {{ listen 127.0.0.1:{nport}; root {root}; }}
}}
""")
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(nport)
        if request(f"http://127.0.0.1:{nport}/webp")[1] != webp:
            raise SystemExit("nginx serves different bytes")
        result = {
            "image": pathlib.Path(args.image).name,
            "bytes": len(webp),
            "connections": args.connections,
            "seconds": args.seconds,
            "imgpipe": wrk(url, args.connections, args.seconds),
            "nginx": wrk(f"http://127.0.0.1:{nport}/webp", args.connections, args.seconds),
        }
        print(json.dumps(result))
    finally:
        serve.terminate()
        serve.wait()
        if nginx:
            nginx.terminate()
            nginx.wait()


if __name__ == "__main__":
    main()
