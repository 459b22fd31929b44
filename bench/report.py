#!/usr/bin/env python3
"""Turn the figures scripts/bench.sh collected into BENCHMARKS.md (stdout).

    report.py OUT_DIR "the command that was run"
"""
import json
import os
import platform
import statistics
import sys
import time

OUT, COMMAND = sys.argv[1], sys.argv[2]
PEERS = ("imgpipe", "sharp", "pillow")
STEPS = ("decode", "resize", "jpeg85", "jpeg60", "webp85", "png", "thumb300", "total")
LOSSY = ("jpeg85", "jpeg60", "webp85", "thumb300")
# AWS Lambda list prices, us-east-1, first tier, per GB-second (2025 price list).
PRICE = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_DATE = "2025 price list (us-east-1, first tier), read 2026-11"
REQUEST_PRICE = 0.20 / 1e6
MEMORY_MB = (512, 1024, 1769, 3008)


def lines(name):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


bench = {p: {r["image"]: r for r in lines(f"{p}.jsonl")} for p in PEERS}
times = {p: {r["image"]: r for r in lines(f"{p}.time.jsonl")} for p in PEERS}
ssim = {p: {r["image"]: r for r in lines(f"{p}.ssim.jsonl")} for p in PEERS}
images = list(bench["imgpipe"].keys())


def dollars_per_million(seconds, mb, price):
    """Lambda cost of a million invocations that each take `seconds` of one
    core: below 1,769 MB the function gets that share of a vCPU."""
    billed = seconds * max(1.0, 1769 / mb)
    return (billed * mb / 1024 * price + REQUEST_PRICE) * 1e6


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def cpu_per_set(peer, image):
    """CPU seconds per five-variant set: the whole process's user+sys over
    the sets it ran (warm-up included), so start-up is counted too."""
    t = times[peer].get(image)
    b = bench[peer].get(image)
    if not t or not b:
        return None
    return (t["user_s"] + t["sys_s"]) / (b["reps"] + 1)


out = []
w = out.append
w("# Benchmarks")
w("")
w("imgpipe against sharp (libvips, what AWS's Dynamic Image Transformation runs) and the")
w("original Pillow pipeline, doing the same five-variant set (JPEG q85, JPEG q60, WebP q85,")
w("lossless PNG, 300×300 JPEG q80 thumbnail; long side ≤ 4096) on the same images, in one")
w("run, interleaved image by image, each process pinned to one core (`taskset -c 0`).")
w("")
w(f"- command: `{COMMAND}`")
w(f"- measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, {os.cpu_count()} cores"
  f" ({next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), 'cpu unknown')})")
w(f"- peers: {', '.join(sorted({r['peer'] for p in PEERS for r in bench[p].values()}))}")
w("- per-step figures are medians over the reps of in-process timings; ratios are imgpipe ÷ peer (below 1 is better)")
w("")

w("## Time per step (ms, median, one core)")
w("")
for image in images:
    w(f"### {image}")
    w("")
    w("| step | imgpipe | sharp | Pillow | ÷ sharp | ÷ Pillow |")
    w("|---|---:|---:|---:|---:|---:|")
    for step in STEPS:
        v = {p: bench[p].get(image, {}).get("median_ms", {}).get(step) for p in PEERS}
        w(f"| {step} | {v['imgpipe']} | {v['sharp']} | {v['pillow']} | {ratio(v['imgpipe'], v['sharp'])} | {ratio(v['imgpipe'], v['pillow'])} |")
    w("")

w("## Bytes and quality")
w("")
w("SSIM (Gaussian, Wang et al.) of each lossy output against the pixels that were encoded;")
w("PNG is checked lossless (max abs diff against those pixels).")
w("")
w("| image | variant | imgpipe bytes | sharp bytes | ÷ sharp | imgpipe SSIM | sharp SSIM | Pillow bytes |")
w("|---|---|---:|---:|---:|---:|---:|---:|")
for image in images:
    stem = image.rsplit(".", 1)[0]
    for v in ("jpeg85", "jpeg60", "webp85", "png", "thumb300"):
        b = {p: bench[p].get(image, {}).get("bytes", {}).get(v) for p in PEERS}
        s = {p: ssim[p].get(stem, {}).get("ssim", {}).get(v) for p in PEERS}
        if v == "png":
            s = {p: f"lossless={ssim[p].get(stem, {}).get('png_max_abs_diff') == 0}" for p in PEERS}
        w(f"| {image} | {v} | {b['imgpipe']} | {b['sharp']} | {ratio(b['imgpipe'], b['sharp'])} | {s['imgpipe']} | {s['sharp']} | {b['pillow']} |")
w("")

w("## Whole set: CPU and memory (one core)")
w("")
w("CPU seconds per set = the process's user+sys time over the sets it ran (warm-up included, start-up counted).")
w("")
w("| image | imgpipe CPU s | sharp CPU s | Pillow CPU s | ÷ sharp | ÷ Pillow | imgpipe peak RSS MB | sharp peak RSS MB | Pillow peak RSS MB | RSS ÷ sharp |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for image in images:
    c = {p: cpu_per_set(p, image) for p in PEERS}
    r = {p: (times[p].get(image) or {}).get("max_rss_kb", 0) / 1024 for p in PEERS}
    fmt = lambda x: f"{x:.2f}" if x is not None else "–"
    w(f"| {image} | {fmt(c['imgpipe'])} | {fmt(c['sharp'])} | {fmt(c['pillow'])} | {ratio(c['imgpipe'], c['sharp'])} | {ratio(c['imgpipe'], c['pillow'])} "
      f"| {r['imgpipe']:.0f} | {r['sharp']:.0f} | {r['pillow']:.0f} | {ratio(r['imgpipe'], r['sharp'])} |")
w("")

thr = {r["jobs"]: r for r in lines("throughput.jsonl")}
if 1 in thr and 2 in thr:
    w("## Throughput on all cores")
    w("")
    w(f"`imgpipe process` over {thr[1]['images']} images: {thr[1]['wall_s']} s with one thread, "
      f"{thr[2]['wall_s']} s with two: {thr[1]['wall_s'] / thr[2]['wall_s']:.2f}× the one-thread throughput.")
    w("")

w("## Targets")
w("")
w("| target | measured | met |")
w("|---|---|---|")
for image in images:
    if image.startswith(("photo-12mp", "photo-2725")):
        a, b = bench["imgpipe"][image]["median_ms"]["total"], bench["sharp"][image]["median_ms"]["total"]
        w(f"| set ≤ 0.2× sharp's time ({image}) | {a / b:.2f}× | {'yes' if a / b <= 0.2 else 'no'} |")
worst = None
for image in images:
    stem = image.rsplit(".", 1)[0]
    for v in LOSSY:
        bi, bs = bench["imgpipe"][image]["bytes"][v], bench["sharp"][image]["bytes"][v]
        si, ss = ssim["imgpipe"].get(stem, {}).get("ssim", {}).get(v), ssim["sharp"].get(stem, {}).get("ssim", {}).get(v)
        ok = bi <= 1.02 * bs and si is not None and ss is not None and si >= ss - 0.002
        if not ok and (worst is None or bi / bs > worst[0]):
            worst = (bi / bs, image, v, si, ss)
w(f"| lossy ≤ 1.02× sharp's bytes at SSIM ≥ sharp's − 0.002 | "
  + ("all variants" if worst is None else f"worst: {worst[2]} of {worst[1]} at {worst[0]:.2f}× bytes, SSIM {worst[3]} vs {worst[4]}")
  + f" | {'yes' if worst is None else 'no'} |")
for image in images:
    m = bench["imgpipe"][image]["median_ms"]
    w(f"| set ≤ 2× our WebP alone ({image}) | {m['total'] / m['webp85']:.2f}× | {'yes' if m['total'] <= 2 * m['webp85'] else 'no'} |")
if 1 in thr and 2 in thr:
    s = thr[1]["wall_s"] / thr[2]["wall_s"]
    w(f"| 2 threads ≥ 1.7× one thread | {s:.2f}× | {'yes' if s >= 1.7 else 'no'} |")
rss = [((times['imgpipe'].get(i) or {}).get('max_rss_kb', 0), (times['sharp'].get(i) or {}).get('max_rss_kb', 1)) for i in images]
worst_rss = max(a / b for a, b in rss)
w(f"| peak RSS ≤ 0.6× sharp's | worst {worst_rss:.2f}× | {'yes' if worst_rss <= 0.6 else 'no'} |")
render = {r["peer"].split("-")[0]: r for r in lines("render.jsonl")}
if "imgpipe" in render and "sharp" in render:
    a, b = render["imgpipe"]["median_ms"], render["sharp"]["median_ms"]
    w(f"| on-demand {render['imgpipe']['spec']} ≤ 0.7× sharp ({render['imgpipe']['image']}) | {a / b:.2f}× ({a} vs {b} ms) | {'yes' if a / b <= 0.7 else 'no'} |")
else:
    w("| on-demand w=640 ≤ 0.7× sharp | not measured | – |")
cold = next(iter(lines("coldstart.jsonl")), None)
if cold:
    w(f"| cold start ≤ 50 ms (process start → first answered request) | {cold['median_ms']} ms median, {cold['min_ms']} ms best | {'yes' if cold['median_ms'] <= 50 else 'no'} |")
zip_ = next(iter(lines("zip.jsonl")), None)
if zip_:
    mb = zip_["bytes"] / 1e6
    w(f"| zip ≤ 10 MB ({zip_['arch']}) | {mb:.2f} MB | {'yes' if mb <= 10 else 'no'} |")
hit = next(iter(lines("throughput-hit.jsonl")), None)
if hit:
    r = hit["imgpipe"]["requests_per_s"] / hit["nginx"]["requests_per_s"]
    w(f"| cache-hit throughput vs nginx (no target; for scale) | {r:.2f}× nginx's requests/s | – |")
w("")

if "imgpipe" in render and "sharp" in render:
    w("## On-demand render (a cache miss)")
    w("")
    w("The encoded source in, one resize, WebP q85 out, one core. sharp's recipe is")
    w("`sharp(buf).resize(640).webp({quality: 85})`. Both shrink the JPEG while decoding it")
    w("(1/4 here: libjpeg-turbo's scaled IDCT in sharp, jpeg-decoder's in imgpipe).")
    w("")
    w("| peer | image | spec | median ms | best ms | bytes | size |")
    w("|---|---|---|---:|---:|---:|---|")
    for p in ("imgpipe", "sharp"):
        r = render[p]
        w(f"| {r['peer']} | {r['image']} | {r['spec']} | {r['median_ms']} | {r['min_ms']} | {r['bytes']} | {r['size'][0]}×{r['size'][1]} |")
    w("")

if hit:
    w("## Cache hits: imgpipe serve against nginx")
    w("")
    w(f"wrk, 2 threads, {hit['connections']} connections, {hit['seconds']} s each, on the same 2-core machine as the")
    w(f"servers, fetching the stored WebP variant of {hit['image']} ({hit['bytes']:,} bytes): `imgpipe serve` (local")
    w("backend: the variant is a file, its headers a sidecar) against nginx serving the same bytes from disk.")
    w("")
    w("| server | requests/s | p99 ms | non-2xx |")
    w("|---|---:|---:|---:|")
    for name in ("imgpipe", "nginx"):
        h = hit[name]
        w(f"| {name} | {h['requests_per_s']:,.0f} | {h['p99_ms']} | {h['non_2xx']} |")
    w("")

if cold or zip_:
    w("## Lambda package and cold start")
    w("")
    if zip_:
        w(f"- `scripts/build-lambda.sh` ({zip_['arch']}): `bootstrap.zip` is {zip_['bytes']:,} bytes.")
    if cold:
        w(f"- Cold-start proxy (`bench/coldstart.py`): the release binary as the `http` handler under a loopback")
        w(f"  Lambda Runtime API, from process start to the response of its first request: median {cold['median_ms']} ms,")
        w(f"  best {cold['min_ms']} ms over {cold['reps']} starts. Lambda adds its own sandbox start to this.")
    w("")

w("## Cost per million")
w("")
w("Lambda bills GB-seconds. Below 1,769 MB a function gets a proportional share of one vCPU, so")
w("single-threaded CPU time stretches by 1769/MB; at and above 1,769 MB it runs at full speed")
w("(the set is mostly single-threaded, so more memory buys no more speed). Figures use the")
w(f"measured CPU seconds per set on the 12 MP photo; prices: {PRICE_DATE}; arm64 assumes the")
w("same CPU time as measured here on x86_64 (not measured on arm64). Requests ($0.20 per million) included.")
w("")
big = next((i for i in images if i.startswith("photo-12mp")), images[0])
w("| memory MB | arch | imgpipe $/M uploads | sharp $/M uploads | original pipeline (Pillow) $/M uploads |")
w("|---:|---|---:|---:|---:|")
for mb in MEMORY_MB:
    for arch, price in PRICE.items():
        cells = []
        for p in PEERS:
            cpu = cpu_per_set(p, big)
            if cpu is None:
                cells.append("–")
                continue
            cells.append(f"{dollars_per_million(cpu, mb, price):,.0f}")
        w(f"| {mb} | {arch} | {cells[0]} | {cells[1]} | {cells[2]} |")
w("")
if "imgpipe" in render and "sharp" in render:
    w("")
    w(f"Per million on-demand misses ({render['imgpipe']['spec']} of {render['imgpipe']['image']}), from the median")
    w("render time above (one core; the same memory scaling):")
    w("")
    w("| memory MB | arch | imgpipe $/M misses | sharp $/M misses |")
    w("|---:|---|---:|---:|")
    for mb in MEMORY_MB:
        for arch, price in PRICE.items():
            cells = []
            for p in ("imgpipe", "sharp"):
                cells.append(f"{dollars_per_million(render[p]['median_ms'] / 1000, mb, price):,.2f}")
            w(f"| {mb} | {arch} | {cells[0]} | {cells[1]} |")
print("\n".join(out))
