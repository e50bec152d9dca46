"""The seed incident, reproduced on loopback: an origin that answers every
request after 2 s, thousands of distinct concurrent misses, and at the same
time a stream of requests for thumbnails already cached. Reports how many
slow misses were held at once, hit latency during the flood, errors and the
server's peak RSS. Standard library only; bounded in count and time.

    python3 scripts/lib/loadtest.py origin    (prints its URL, serves until killed)
    python3 scripts/lib/loadtest.py run --origin URL --base URL [--pid PID] [--misses N]
    python3 scripts/lib/loadtest.py probe ... (the hit stream; started by `run`)

`scripts/loadtest` starts the origin and the server (native or the Worker)
and calls `run`.
Signs with the published TEST key pair, which the server must use.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from sample_origin import sample_png  # noqa: E402

KEY = bytes.fromhex("736563726574")  # published TEST key
SALT = bytes.fromhex("68656C6C6F")
SLOW_SECONDS = 2.0


def signed(options: str, source: str) -> str:
    enc = base64.urlsafe_b64encode(source.encode()).rstrip(b"=").decode()
    path = f"/{options}/{enc}"
    sig = hmac.new(KEY, SALT + path.encode(), hashlib.sha256).digest()
    return "/" + base64.urlsafe_b64encode(sig).rstrip(b"=").decode() + path


# ---- the origin: every /slow/ path after SLOW_SECONDS, /fast/ at once ----

def noise_png(side: int) -> bytes:
    """Incompressible: about 3 bytes a pixel on the wire."""
    raw = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


async def origin_main() -> None:
    # EDGETHUMB_LOADTEST_BODY_KB: sources of about that size, to show memory
    # stays bounded when every miss brings a large original.
    kb = int(os.environ.get("EDGETHUMB_LOADTEST_BODY_KB", "0"))
    body = noise_png(int((kb * 1024 / 3) ** 0.5)) if kb else sample_png(320, 200)
    state = {"now": 0, "peak": 0, "served": 0, "connections": 0, "peak_connections": 0}

    async def answer(path: str):
        """(body, content type) for one request."""
        if path == "/stats":
            return json.dumps(state).encode(), b"application/json"
        if path.startswith("/slow/"):
            state.setdefault("first_slow", time.monotonic())
            state["last_slow"] = time.monotonic()
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            try:
                await asyncio.sleep(SLOW_SECONDS)
            finally:
                state["now"] -= 1
        state["served"] += 1
        return body, b"image/png"

    async def http1(reader, writer):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            out, ctype = await answer(head.split(b" ", 2)[1].decode())
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype
                         + b"\r\nContent-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)
            await writer.drain()

    async def handle(reader, writer):
        state["connections"] += 1
        state["peak_connections"] = max(state["peak_connections"], state["connections"])
        try:
            await http1(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            state["connections"] -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


# ---- the hit stream: sequential keep-alive GETs, latencies in ms ----

def probe_main(base: str, paths_file: str, seconds: float) -> None:
    paths = open(paths_file).read().split()
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    lat, bad = [], {}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        path = paths[i % len(paths)]
        i += 1
        t = time.perf_counter()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            status, cache = r.status, r.getheader("x-edgethumb-cache", "")
        except Exception as e:  # noqa: BLE001 (reported, not hidden)
            status, cache = type(e).__name__, ""
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
        lat.append((time.perf_counter() - t) * 1000)
        if status != 200 or cache != "hit":
            key = f"{status} {cache}"
            bad[key] = bad.get(key, 0) + 1
        time.sleep(0.005)
    print(json.dumps({"latencies": lat, "bad": bad}))


# ---- the flood ----

async def one_miss(host, port, path, connects, stats):
    try:
        async with connects:
            reader, writer = await asyncio.open_connection(host, port)
        stats["open"] += 1
        stats["peak_open"] = max(stats["peak_open"], stats["open"])
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            await reader.read()
        finally:
            stats["open"] -= 1
            writer.close()
        stats["status"][status] = stats["status"].get(status, 0) + 1
    except Exception as e:  # noqa: BLE001 (counted and reported)
        name = type(e).__name__
        stats["errors"][name] = stats["errors"].get(name, 0) + 1


def idle_latencies(host, port, origin, hits):
    """One request at a time, before the flood: hits, then misses that
    fetch at once and transform (the cost of the server's threading when
    nothing else runs)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)

    def timed(path):
        t = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise OSError(f"{path} answered {r.status}")
        return (time.perf_counter() - t) * 1000

    hit = [timed(hits[i % len(hits)]) for i in range(500)]
    miss = [timed(signed("rs:fit:64:0", f"{origin}/fast/idle-{i}.png")) for i in range(200)]
    return {
        "idle hit p50 / p99 ms": f"{percentile(hit, 50):.3f} / {percentile(hit, 99):.3f}",
        "idle miss p50 / p99 ms": f"{percentile(miss, 50):.3f} / {percentile(miss, 99):.3f}",
    }


def rss_kb(pid: int, field: str) -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def scrape(base: str) -> dict:
    """`/metrics` as {sample name with labels: value}."""
    host, port = base.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    if r.status != 200:
        raise OSError(f"/metrics answered {r.status}")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def summed(metrics: dict, prefix: str, label: str = "") -> int:
    return int(sum(v for k, v in metrics.items() if k.startswith(prefix) and label in k))


def get_json(base: str, path: str):
    host, port = base.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", path)
    return json.loads(c.getresponse().read())


async def run_main(args) -> int:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # The server holds two sockets per slow miss (client and upstream): this
    # origin speaks cleartext HTTP/1.1, a connection per request.
    most = (nofile - 300) // 2
    misses = args.misses
    if misses > most:
        print(f"loadtest: open-file limit {nofile}: {misses} misses need ~{2 * misses} sockets "
              f"in the server; running {most}")
        misses = most

    origin = args.origin
    host, port = args.base.removeprefix("http://").split(":")
    port = int(port)

    print(f"loadtest: open-file limit {nofile} per process; the server holds two sockets per "
          f"slow miss (the client's and the upstream's), so at most {most} misses")

    # Thumbnails to be hit: made once, cached.
    hits = [signed("rs:fit:64:0", f"{origin}/fast/{i}.png") for i in range(20)]
    for p in hits:
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request("GET", p)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            print(f"loadtest: warming {p} gave {r.status}")
            return 1
    idle = idle_latencies(host, port, origin, hits)
    before = None
    if args.metrics:
        try:
            before = scrape(args.base)
        except (OSError, ValueError) as e:
            print(f"loadtest: no /metrics to compare with ({e})")
    paths_file = f"/tmp/edgethumb-loadtest-{os.getpid()}.paths"
    open(paths_file, "w").write("\n".join(hits))

    duration = SLOW_SECONDS + args.ramp + 3
    probe = subprocess.Popen([sys.executable, __file__, "probe", args.base, paths_file, str(duration)],
                             stdout=subprocess.PIPE, text=True)
    await asyncio.sleep(0.5)

    stats = {"open": 0, "peak_open": 0, "status": {}, "errors": {}}
    connects = asyncio.Semaphore(args.connects)
    peak_rss = 0
    peak_held = 0
    started = time.monotonic()
    tasks = []
    for i in range(misses):
        path = signed("rs:fit:100:0", f"{origin}/slow/{i}.png")
        tasks.append(asyncio.create_task(one_miss(host, port, path, connects, stats)))
        if i % 200 == 199:
            await asyncio.sleep(args.ramp * 200 / misses)
    flood = asyncio.gather(*tasks)
    while not flood.done() and time.monotonic() - started < args.timeout:
        await asyncio.sleep(0.1)
        if args.pid:
            peak_rss = max(peak_rss, rss_kb(args.pid, "VmRSS"))
        try:
            peak_held = max(peak_held, get_json(origin, "/stats")["now"])
        except OSError:
            pass
    timed_out = not flood.done()
    if timed_out:
        for t in tasks:
            t.cancel()
    await asyncio.gather(flood, return_exceptions=True)
    elapsed = time.monotonic() - started
    origin_stats = get_json(origin, "/stats")
    out, _ = probe.communicate(timeout=duration + 60)
    os.unlink(paths_file)
    pr = json.loads(out)
    lat = pr["latencies"]
    hwm = rss_kb(args.pid, "VmHWM") if args.pid else 0

    agree, reasons = {}, {}
    if before is not None:
        # What the load generator counted against what the server says.
        after = scrape(args.base)
        delta = {k: v - before.get(k, 0) for k, v in after.items()}
        sent = len(lat) + sum(stats["status"].values())
        probe_hits = len(lat) - sum(pr["bad"].values())
        shed = stats["status"].get(503, 0)
        agree = {
            "requests (generator / /metrics)": (sent, summed(delta, "edgethumb_requests_total")),
            "hits (generator / /metrics)": (probe_hits, summed(delta, "edgethumb_requests_total", 'cache="hit"')),
            "sheds (generator / /metrics)": (shed, summed(delta, "edgethumb_shed_total")),
        }
        reasons = {k.split('"')[1]: int(v) for k, v in delta.items()
                   if k.startswith("edgethumb_shed_total") and v}
    failures = {f"HTTP {k}": v for k, v in stats["status"].items() if k not in (200, 503)}
    for k, (ours, theirs) in agree.items():
        if ours != theirs:
            failures[f"/metrics disagrees: {k}"] = f"{ours} / {theirs}"
    failures.update(stats["errors"])
    failures.update({f"hit {k}": v for k, v in pr["bad"].items()})
    report = {
        **idle,
        "misses sent": misses,
        "slow misses held at once (at the origin)": max(peak_held, origin_stats["peak"]),
        "origin connections at most": origin_stats["peak_connections"],
        "slow requests reached the origin over s": round(
            origin_stats.get("last_slow", 0) - origin_stats.get("first_slow", 0), 2),
        "client connections open at once": stats["peak_open"],
        "miss statuses": dict(sorted(stats["status"].items())),
        "hits during the flood": len(lat),
        "hit p50 ms": round(percentile(lat, 50), 2),
        "hit p99 ms": round(percentile(lat, 99), 2),
        "hit max ms": round(max(lat), 2) if lat else None,
        "failures (other than deliberate 503s)": failures or "none",
        "server peak RSS MiB": round(max(peak_rss, hwm) / 1024, 1) if args.pid else "n/a",
        **{k: f"{a} / {b}" for k, (a, b) in agree.items()},
        **({"sheds by reason (/metrics)": reasons} if agree else {}),
        "flood seconds": round(elapsed, 1),
        "timed out": timed_out,
    }
    width = max(len(k) for k in report)
    print("\nedgethumb load test")
    for k, v in report.items():
        print(f"  {k:<{width}}  {v}")
    if args.json:
        open(args.json, "w").write(json.dumps(report, default=str))
    return 1 if failures or timed_out else 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("origin")
    pp = sub.add_parser("probe")
    pp.add_argument("base")
    pp.add_argument("paths")
    pp.add_argument("seconds", type=float)
    rp = sub.add_parser("run")
    rp.add_argument("--base", help="the server under test, e.g. http://127.0.0.1:8080")
    rp.add_argument("--pid", type=int, default=0, help="its process id, for RSS")
    rp.add_argument("--misses", type=int, default=10000)
    rp.add_argument("--ramp", type=float, default=1.0, help="seconds over which misses are started")
    rp.add_argument("--connects", type=int, default=512, help="connections being opened at once")
    rp.add_argument("--timeout", type=float, default=120.0, help="the flood's time bound")
    rp.add_argument("--origin", required=True, help="the slow origin (`loadtest.py origin` prints it)")
    rp.add_argument("--json", help="also write the report here")
    rp.add_argument("--metrics", action="store_true",
                    help="compare the server's /metrics with what was counted here")
    a = ap.parse_args()
    if a.cmd == "origin":
        asyncio.run(origin_main())
        return 0
    if a.cmd == "probe":
        probe_main(a.base, a.paths, a.seconds)
        return 0
    return asyncio.run(run_main(a))


if __name__ == "__main__":
    sys.exit(main())
