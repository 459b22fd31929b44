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

# Sections other scripts write into BENCHMARKS.md, kept as they are when
# this script regenerates the rest: (name, the script that writes it).
SECTIONS = (("load", "scripts/load.sh"), ("soak", "scripts/soak.sh"), ("fuzz", "scripts/fuzz.sh"))


def markers(name):
    script = dict(SECTIONS)[name]
    return f"<!-- {name}: written by {script} -->", f"<!-- /{name} -->"


def kept_section(path, name):
    """The section `name` already in `path`, to carry over a regeneration."""
    begin, end = markers(name)
    try:
        text = open(path).read()
    except OSError:
        return None
    if begin in text and end in text:
        return text[text.index(begin):text.index(end) + len(end)]
    return None


def measured_at():
    return f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores"


def load_section(path, command):
    """The Load section, from bench/load.py's JSON line at `path`."""
    r = json.load(open(path))
    yes = lambda ok: "yes" if ok else "no"
    return [
        "## Load and slow clients (`imgpipe serve`, local backend)",
        "",
        f"`{command}`, {measured_at()}; the server's RSS sampled every 50 ms.",
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
        f"| {r['renders']} concurrent distinct renders of {r['image']} (`webp?w=…`, sent at once) | "
        f"{r['ok']} rendered, {r['shed']} shed with 503 ({r['shed_with_retry_after']} with Retry-After), "
        f"{r['errors']} other | 200 or 503 + Retry-After only | {yes(r['errors'] == 0 and r['shed'] == r['shed_with_retry_after'])} |",
        f"| p50 / p99 of the 200s | {r['p50_s']} s / {r['p99_s']} s | p99 ≤ 10 s | {yes(r['p99_s'] <= 10)} |",
        f"| peak RSS during the burst | {r['burst_peak_rss_mb']:.0f} MB (idle {r['idle_rss_mb']:.0f} MB) | ≤ 600 MB | {yes(r['burst_peak_rss_mb'] <= 600)} |",
        f"| {r['slow_readers']} slow readers of the {r['png_bytes']:,}-byte PNG variant (1 KiB read, then {r['stall_s']:.0f} s stalled) | "
        f"peak RSS {r['slow_peak_rss_mb']:.0f} MB | ≤ 200 MB | {yes(r['slow_peak_rss_mb'] <= 200)} |",
        f"| two clients: {r['fair_attackers']} loops of distinct renders from 127.0.0.1, meanwhile "
        f"{r['fair_requests']} renders one after another from 127.0.0.2 | the second client: {r['fair_ok']} of "
        f"{r['fair_requests']} 200, p50 {r['fair_p50_s']} s, p99 {r['fair_p99_s']} s (the first: "
        f"{r['attacker_served']} served, {r['attacker_shed']} shed) | ≥ 90 % 200, p99 ≤ 2 s | "
        f"{yes(r['fair_ok'] * 10 >= r['fair_requests'] * 9 and r['fair_p99_s'] <= 2)} |",
        f"| `/health` afterwards | {r['health_after']} | 200 | {yes(r['health_after'] == 200)} |",
        "",
        "A render takes a core before it reads its original, and at most `IMGPIPE_MAX_QUEUED_RENDERS` (default 8 × cores)",
        "wait for one; past that the answer is 503 with Retry-After. Stored variants are streamed from disk in 64 KiB",
        "reads, and a connection that moves no byte for 60 s is closed. The queue takes turns between clients, each",
        "with at most `IMGPIPE_MAX_QUEUED_RENDERS_PER_CLIENT` (a quarter of the queue) waiting: a second client waits",
        "for at most one render per busy core before its turn, so its p99 is bounded by about two renders' time.",
    ]


def fuzz_section(path, command):
    """The Fuzzing section, from scripts/fuzz.sh's JSON lines at `path`."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    total = sum(r["runs"] for r in rows)
    crashes = sum(r["crashes"] for r in rows)
    out = [
        "## Fuzzing",
        "",
        f"`{command}`, {measured_at()}: cargo-fuzz (libFuzzer, AddressSanitizer) on each target in `fuzz/`,",
        "seeded from the corpus's and the test fixtures' small files. A finding is any panic, abort, sanitizer report,",
        "timeout or out-of-memory; each is fixed and kept as a regression test. One leak in rav1d's C API",
        "(`dav1d_picture_unref`, tens of bytes per AV1 picture) is suppressed in `fuzz/lsan.supp`: see ARCHITECTURE.md.",
        "",
        "| target | what it feeds | executions | seconds | corpus | findings |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(f"| `{r['target']}` | {r['what']} | {r['runs']:,} | {r['seconds']} | {r['corpus']} | {r['crashes']} |")
    out += ["", f"Total: {total:,} executions, {crashes} finding{'' if crashes == 1 else 's'}."]
    return out


def soak_section(path, command):
    """The Soak section, from bench/soak.py's JSON line at `path`."""
    r = json.load(open(path))
    yes = lambda ok: "yes" if ok else "no"
    lat = r["latency_s"]
    status = lambda kind: ", ".join(f"{n} × {s}" for s, n in sorted(r["status"].get(kind, {}).items()))
    errors = ", ".join(f"{n} {k}" for k, n in sorted(r["client_errors"].items())) or "none"
    return [
        "## Soak (`imgpipe serve`, local backend)",
        "",
        f"`{command}`, {measured_at()}: uploads of generated JPEGs and PNGs (one in ten cut short), on-demand renders,",
        f"hits and slow readers at a bounded rate for {r['duration_s'] / 60:.0f} minutes, the server SIGKILLed and restarted at",
        f"{' s and '.join(str(t) for t in r['restarts_at_s'])} s.",
        "",
        "| measure | result | met |",
        "|---|---|---|",
        f"| uploads accepted (PUT 200) | {r['uploads_accepted']} ({r['cut_short']} cut short) | – |",
        f"| final state | {r['ready']} ready, {r['failed']} failed, {r['stuck_pending']} still pending, {r['lost']} lost | {yes(r['lost'] == 0 and r['stuck_pending'] == 0)} |",
        f"| every cut upload failed, every whole one ready | {r['wrong_outcome']} wrong | {yes(r['wrong_outcome'] == 0)} |",
        f"| variants served whole at their recorded length | {r['variants_checked'] - r['bad_variant_count']} of {r['variants_checked']} | {yes(r['bad_variant_count'] == 0)} |",
        f"| `/health` afterwards | {r['health_after']} | {yes(r['health_after'] == 200)} |",
        f"| RSS | max {r['rss_mb']['max']} MB, at the end {r['rss_mb']['last']} MB; per minute: {', '.join(str(round(m)) for m in r['rss_mb']['by_minute'])} | – |",
        "",
        "| requests | answers | p50 s | p99 s |",
        "|---|---|---:|---:|",
        *[f"| {k} | {status(k)} | {lat[k]['p50']} | {lat[k]['p99']} |" for k in ("upload", "render", "hit", "slow")],
        "",
        f"Client-side errors (connections refused or cut while the server was down): {errors}.",
    ]


if sys.argv[1] in ("--load", "--soak", "--fuzz"):
    # report.py --load|--fuzz JSON COMMAND BENCHMARKS_MD: replace (or add) that section in place.
    flag, data, command, target = sys.argv[1:5]
    name = flag[2:]
    begin, end = markers(name)
    body = {"load": load_section, "soak": soak_section, "fuzz": fuzz_section}[name](data, command)
    section = "\n".join([begin, *body, end])
    text = open(target).read() if os.path.exists(target) else "# Benchmarks\n"
    old = kept_section(target, name)
    text = text.replace(old, section) if old else text.rstrip("\n") + "\n\n" + section + "\n"
    open(target, "w").write(text)
    sys.exit(0)

OUT, COMMAND = sys.argv[1], sys.argv[2]
KEEP = sys.argv[3] if len(sys.argv) > 3 else None
PEERS = ("imgpipe", "sharp", "pillow")
STEPS = ("decode", "resize", "jpeg85", "jpeg60", "webp85", "png", "thumb300", "total")
LOSSY = ("jpeg85", "jpeg60", "webp85", "thumb300")
# AWS Lambda list prices, us-east-1, first tier, per GB-second (2025 price list).
PRICE = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_DATE = "2025 price list (us-east-1, first tier), read 2026-11"
REQUEST_PRICE = 0.20 / 1e6
MEMORY_MB = (512, 1024, 1769, 3008)
# The other line items, same list and date: S3 Standard, DynamoDB on demand,
# SQS standard, CloudFront Functions, CloudWatch Logs (standard class).
S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000
S3_GB_MONTH = 0.023
DDB_WRU = 0.625 / 1e6
DDB_RRU = 0.125 / 1e6
DDB_GB_MONTH = 0.25
SQS_REQUEST = 0.40 / 1e6
CF_FUNCTION = 0.10 / 1e6
LOG_GB = 0.50
# Lambda's own START, END and REPORT lines per invocation (their format is
# fixed; about 330 bytes with a request id and the REPORT figures).
PLATFORM_LOG_BYTES = 330


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


def deployed():
    """The defaults infra/variables.tf deploys with."""
    import re
    text = open(os.path.join(os.path.dirname(__file__), "..", "infra", "variables.tf")).read()
    out = {}
    for name in ("http_memory_mb", "events_memory_mb", "architecture", "events_batch_size"):
        m = re.search(r'variable "%s" \{.*?default\s*=\s*"?([^"\n]+)"?' % name, text, re.S)
        out[name] = m.group(1).strip() if m else None
    return out


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

req = next(iter(lines("requests.jsonl")), None)
if req and "imgpipe" in render:
    dep = deployed()
    arch = dep["architecture"] or "x86_64"
    gbs_price = PRICE[arch]
    ev_mb, http_mb = int(dep["events_memory_mb"]), int(dep["http_memory_mb"])
    stretch = lambda mb: max(1.0, 1769 / mb)

    def dynamo_units(phase):
        """(write units, read units) per unit of work: writes bill each KB of
        the item, consistent reads each 4 KB of the answer."""
        r, sizes = req[phase]["requests"], req[phase]["dynamodb_bytes"]
        wru = sum(n * -(-sizes.get(op, 1) // 1024) for op, n in r.items()
                  if op.startswith("dynamodb.") and op.split(".")[1] in ("PutItem", "UpdateItem", "DeleteItem"))
        rru = sum(n * -(-sizes.get(op, 1) // 4096) for op, n in r.items()
                  if op.startswith("dynamodb.") and op.split(".")[1] in ("GetItem", "Query"))
        return wru, rru

    def count(phase, prefix):
        return sum(n for op, n in req[phase]["requests"].items() if op.startswith(prefix))

    def rows_for(phase, events_s, http_ms, http_calls, cf_calls, stored):
        """[(item, quantity per unit, unit price text, $ per million)]"""
        rows = []
        if events_s:
            gbs = events_s * stretch(ev_mb) * ev_mb / 1024
            rows.append(("Lambda events: compute", f"{gbs:.2f} GB-s ({events_s * stretch(ev_mb):.2f} s at {ev_mb} MB)",
                         f"${gbs_price:.10f}/GB-s", gbs * gbs_price * 1e6))
            rows.append(("Lambda events: invocations", "1 (batches of up to "
                         f"{dep['events_batch_size']} share one)", "$0.20/M", REQUEST_PRICE * 1e6))
        gbs = sum(http_ms) / 1000 * stretch(http_mb) * http_mb / 1024
        rows.append(("Lambda http: compute", f"{gbs:.4f} GB-s ({' + '.join(f'{m:.0f}' for m in http_ms)} ms at {http_mb} MB)",
                     f"${gbs_price:.10f}/GB-s", gbs * gbs_price * 1e6))
        rows.append(("Lambda http: invocations", f"{http_calls}", "$0.20/M", http_calls * REQUEST_PRICE * 1e6))
        puts, gets = count(phase, "s3.PutObject"), count(phase, "s3.GetObject") + count(phase, "s3.HeadObject")
        rows.append(("S3 PUT", f"{puts:g}", "$0.005/1,000", puts * S3_PUT * 1e6))
        rows.append(("S3 GET/HEAD", f"{gets:g}", "$0.0004/1,000", gets * S3_GET * 1e6))
        wru, rru = dynamo_units(phase)
        if phase == "upload":
            rru += dynamo_units("meta")[1]  # the client's one /meta read
        rows.append(("DynamoDB writes", f"{wru:g} WRU", "$0.625/M WRU", wru * DDB_WRU * 1e6))
        rows.append(("DynamoDB reads", f"{rru:g} RRU", "$0.125/M RRU", rru * DDB_RRU * 1e6))
        sqs = count(phase, "sqs.") + (1 if phase == "upload" else 0)
        if sqs:
            rows.append(("SQS", f"{sqs:g} (S3's send, the poll that receives it, the delete)", "$0.40/M", sqs * SQS_REQUEST * 1e6))
        rows.append(("CloudFront Function", f"{cf_calls}", "$0.10/M", cf_calls * CF_FUNCTION * 1e6))
        if stored:
            raw, variants, item = stored
            gb = (raw + variants) / 1e9
            rows.append(("S3 storage, per month", f"{(raw + variants) / 1e6:.1f} MB (original {raw / 1e6:.1f} + variants {variants / 1e6:.1f})",
                         "$0.023/GB-month", gb * S3_GB_MONTH * 1e6))
            rows.append(("DynamoDB storage, per month", f"{item:,} bytes", "$0.25/GB-month", item / 1e9 * DDB_GB_MONTH * 1e6))
        logs = sum(req[phase]["log_bytes"].values()) + (req["meta"]["log_bytes"]["serve"] if phase == "upload" else 0)
        invocations = http_calls + (1 if events_s else 0)
        logged = logs + PLATFORM_LOG_BYTES * invocations
        rows.append(("Log ingestion", f"{logged:,} bytes ({logs:,} ours + Lambda's {invocations} × {PLATFORM_LOG_BYTES})",
                     "$0.50/GB", logged / 1e9 * LOG_GB * 1e6))
        return rows

    events_s = cpu_per_set("imgpipe", big)
    up = req["upload"]
    item = max((v for k, v in up["dynamodb_bytes"].items() if k.endswith(("PutItem", "UpdateItem"))), default=0)
    upload_rows = rows_for("upload", events_s, [req["http_ms"]["post_uploads"], req["http_ms"]["meta"]], 2, 0,
                           (req["stored_bytes_per_upload"]["raw"], req["stored_bytes_per_upload"]["variants_and_meta"], item))
    miss_rows = rows_for("miss", None, [render["imgpipe"]["median_ms"]], 1, 1, None)

    w("")
    w("## Cost per million uploads and per million misses, line by line")
    w("")
    w(f"At the deployed defaults (`infra/variables.tf`: {arch}, events function {ev_mb} MB, http function {http_mb} MB),")
    w(f"prices: {PRICE_DATE}. Requests per upload and per miss are counted, not assumed: `bench/requests.py` runs")
    w("`serve --backend aws` and `worker` against moto through a proxy that counts every AWS request, uploads the")
    w(f"12 MP photo {req['uploads']} times as a client does (POST /uploads, the presigned PUT, /meta until ready), then")
    w(f"misses {req['misses']} distinct `webp?w=` renders. Compute is the measured CPU time of the set (upload) and of the")
    w("render (miss) above; the http function's calls are timed against moto. S3's event to SQS is one send per upload.")
    w("Not included: time waiting on S3 inside the functions, CloudFront requests and data transfer (which any")
    w("image service pays), and free tiers.")
    w("")
    for title, rows in (("Per million uploads (12 MP JPEG)", upload_rows),
                        (f"Per million misses ({render['imgpipe']['spec']} of {render['imgpipe']['image']})", miss_rows)):
        w(f"### {title}")
        w("")
        w("| line item | per unit | price | $ per million |")
        w("|---|---|---|---:|")
        for name, qty, price, dollars in rows:
            w(f"| {name} | {qty} | {price} | {dollars:,.2f} |")
        w(f"| **total** | | | **{sum(r[3] for r in rows):,.2f}** |")
        w("")
    w("The storage rows are per month for as long as the images are kept; everything else is paid once.")
    costs = {mb: round(dollars_per_million(events_s, mb, gbs_price)) for mb in MEMORY_MB}
    ties = [mb for mb in MEMORY_MB if costs[mb] == min(costs.values())]
    w("")
    w("**The events function's memory**, from the table by memory size above: below 1,769 MB the set runs slower for")
    w("the same GB-s, and above it the price rises with no gain in speed. The cheapest rows here are "
      + ", ".join(f"{mb} MB" for mb in ties) + f" (${min(costs.values()):,} per million uploads at {arch}); the fastest of")
    w(f"them is {max(ties)} MB, which is why the events function deploys with {ev_mb} MB"
      + ("" if ev_mb == max(ties) else f" (note: that is not {max(ties)} MB; change `events_memory_mb`)")
      + f". Peak RSS on the 12 MP photo is {(times['imgpipe'].get(big) or {}).get('max_rss_kb', 0) / 1024:.0f} MB.")
for name, _ in SECTIONS:
    kept = kept_section(KEEP, name) if KEEP else None
    if kept:
        w("")
        w(kept)
print("\n".join(out))
