// The Worker as users run it, for `edgethumb bench`: build/worker under
// `wrangler dev` (workerd), fetching the source from a local origin:
//   node bench/workerd.mjs [--photon] FORMAT WIDTH QUALITY REPEATS SOURCE OUTPUT
// With --photon, the @cf-wasm/photon Worker (bench/photon-worker.mjs, JPEG
// only) instead. Five warm-up requests, then REPEATS timed ones, each a miss
// for edgethumb (EDGETHUMB_TTL=0 stores nothing; photon's has no cache). Prints one JSON line like the runner's: median_ms is the
// transform (decode + resize + encode, from the Worker's Server-Timing),
// e2e_ms the whole request as this client sees it, fetch_ms the Worker's
// fetch from the origin; peak_memory_bytes is the Worker's wasm linear
// memory after the last request (it only grows).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const photon = args[0] === "--photon";
const [format, width, quality, repeats, source, output] = photon ? args.slice(1) : args;
if (!output) {
  console.error("usage: workerd.mjs [--photon] FORMAT WIDTH QUALITY REPEATS SOURCE OUTPUT");
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// Requests before the timed ones (see the warm-up below).
const WARMUPS = 5;
// The published imgproxy documentation test key and salt ("secret", "hello").
const KEY = "736563726574";
const SALT = "68656C6C6F";

const input = readFileSync(source);
const origin = createServer((req, res) => {
  res.writeHead(200, { "content-length": input.length });
  res.end(input);
});
const listening = (server) =>
  new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server.address().port)));
const freePort = async () => {
  const probe = createServer();
  const port = await listening(probe);
  await new Promise((ok) => probe.close(ok));
  return port;
};
const originPort = await listening(origin);
const base = `http://127.0.0.1:${originPort}/`;

const dir = mkdtempSync(join(tmpdir(), "edgethumb-workerd-"));
const compat = readFileSync(join(root, "wrangler.toml"), "utf8")
  .split("\n")
  .find((l) => l.startsWith("compatibility_date"));
const vars = {
  EDGETHUMB_KEY: KEY,
  EDGETHUMB_SALT: SALT,
  EDGETHUMB_ALLOW_PRIVATE_SOURCES: "true",
  EDGETHUMB_ALLOWED_SOURCES: base,
  EDGETHUMB_TTL: "0",
  EDGETHUMB_REPORT_WASM_MEMORY: "true",
  // Measuring, not refusing, as the other engines' runner does
  // (bench_limits): the generated 100 MP JPEG is over the default 50 MP.
  EDGETHUMB_MAX_SRC_PIXELS: "400000000",
  EDGETHUMB_MAX_TRANSFORM_BYTES: String(1 << 30),
};
const main = photon ? join(root, "bench/photon-worker.mjs") : join(root, "build/worker/index.js");
const toml = [
  'name = "edgethumb-bench"',
  `main = ${JSON.stringify(main)}`,
  compat,
  "[vars]",
  ...Object.entries(vars).map(([k, v]) => `${k} = ${JSON.stringify(v)}`),
].join("\n");
writeFileSync(join(dir, "wrangler.toml"), toml);

const port = await freePort();
const bin = join(root, "node_modules/.bin");
const wrangler = spawn(
  join(bin, "wrangler"),
  [
    "dev",
    "--config", join(dir, "wrangler.toml"),
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(await freePort()),
    "--persist-to", join(dir, "state"),
    "--show-interactive-dev-session=false",
    "--log-level", "log",
  ],
  {
    cwd: dir,
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_COLOR: "1",
    },
    detached: true, // its own process group, so workerd goes down with it
    stdio: ["ignore", "pipe", "pipe"],
  },
);
let log = "";
const ready = new Promise((ok, fail) => {
  const timer = setTimeout(() => fail(new Error(`wrangler dev did not start in 90 s: ${log}`)), 90_000);
  wrangler.stdout.on("data", (d) => {
    log += d;
    if (log.includes("Ready on http://127.0.0.1")) {
      clearTimeout(timer);
      ok();
    }
  });
  wrangler.stderr.on("data", (d) => (log += d));
  wrangler.on("exit", (code) => fail(new Error(`wrangler dev exited (${code}): ${log}`)));
});

const finish = () => {
  try {
    process.kill(-wrangler.pid, "SIGTERM");
  } catch {}
  origin.close();
  rmSync(dir, { recursive: true, force: true });
};

try {
  await ready;
  const path = `/w:${width}/q:${quality}/f:${format}/plain/${base}source`;
  const signature = createHmac("sha256", Buffer.from(KEY, "hex"))
    .update(Buffer.concat([Buffer.from(SALT, "hex"), Buffer.from(path)]))
    .digest("base64url");
  if (photon && format !== "jpeg") throw new Error("the photon Worker makes JPEG only");
  const url = photon
    ? `http://127.0.0.1:${port}/?src=${encodeURIComponent(`${base}source`)}&w=${width}&q=${quality}`
    : `http://127.0.0.1:${port}/${signature}${path}`;
  const once = async () => {
    const start = performance.now();
    const res = await fetch(url);
    const body = Buffer.from(await res.arrayBuffer());
    const e2e = performance.now() - start;
    if (res.status !== 200) {
      throw new Error(`${res.status}: ${body.toString("utf8", 0, 200)}`);
    }
    const stages = {};
    for (const entry of (res.headers.get("server-timing") ?? "").split(",")) {
      const [name, ...params] = entry.trim().split(";");
      const dur = params.find((p) => p.trim().startsWith("dur="));
      if (dur) stages[name] = Number(dur.trim().slice(4));
    }
    if (!photon && res.headers.get("x-edgethumb-cache") !== "miss") {
      throw new Error(`not a miss: ${res.headers.get("x-edgethumb-cache")}`);
    }
    return {
      body,
      e2e,
      stages,
      memory: Number(res.headers.get("x-edgethumb-wasm-memory")) || null,
    };
  };
  // The isolate's first request compiles the module with V8's baseline
  // compiler (Liftoff) and grows memory. Optimised code (TurboFan) replaces
  // a function only from its next call on, since wasm has no on-stack
  // replacement: a function that ran one long loop stays slow until the next
  // request. Traced on path-2560x1600.jpg: 41 ms, then 34, 33, 29, then 19-21
  // from the fifth on. So five warm-ups: a busy isolate's steady state, with
  // the first request reported apart.
  const first = await once();
  let last = first;
  for (let i = 1; i < WARMUPS; i++) last = await once();
  const runs = [];
  for (let i = 0; i < Math.max(1, Number(repeats)); i++) {
    last = await once();
    runs.push(last);
    if (process.env.EDGETHUMB_BENCH_TRACE) console.error(JSON.stringify(last.stages));
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  };
  const transform = (r) =>
    ["decode", "stream", "resize", "encode"].reduce((sum, s) => sum + (r.stages[s] ?? 0), 0);
  writeFileSync(output, last.body);
  console.log(
    JSON.stringify({
      median_ms: median(runs.map(transform)),
      min_ms: Math.min(...runs.map(transform)),
      // The isolate's first request: compiling the module (Liftoff), growing memory.
      first_ms: transform(first),
      e2e_ms: median(runs.map((r) => r.e2e)),
      fetch_ms: median(runs.map((r) => r.stages.fetch ?? 0)),
      stages: last.stages,
      bytes: last.body.length,
      peak_memory_bytes: last.memory,
    }),
  );
} catch (e) {
  console.error(`workerd.mjs: ${e.message}`);
  process.exitCode = 1;
} finally {
  finish();
}
