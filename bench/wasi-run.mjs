// Runs a wasm32-wasip1 program under Node's WASI, so V8 (the engine
// Cloudflare Workers run) executes it:
//   node bench/wasi-run.mjs MODULE.wasm ARGS...
// Directories in EDGETHUMB_WASI_DIRS (colon-separated) are preopened at
// the same paths. The program's exit code becomes this process's.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";

const [modulePath, ...args] = process.argv.slice(2);
const preopens = {};
for (const dir of (process.env.EDGETHUMB_WASI_DIRS ?? "").split(":")) {
  if (dir) preopens[dir] = dir;
}
const wasi = new WASI({
  version: "preview1",
  args: [modulePath, ...args],
  env: {},
  preopens,
  returnOnExit: true,
});
const module = await WebAssembly.compile(readFileSync(modulePath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
