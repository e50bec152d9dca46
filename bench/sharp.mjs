// The reference for `edgethumb bench`: sharp (libvips), one thread, no
// operation cache, the same job as the runner:
//   node bench/sharp.mjs FORMAT WIDTH QUALITY REPEATS SOURCE OUTPUT
// Writes the last output to OUTPUT and prints one JSON line like the
// runner's. peak_memory_bytes is this Node process's max RSS (Node itself
// included).
import { readFileSync, writeFileSync } from "node:fs";
import sharp from "sharp";

const [format, width, quality, repeats, source, output] = process.argv.slice(2);
if (!output) {
  console.error("usage: sharp.mjs FORMAT WIDTH QUALITY REPEATS SOURCE OUTPUT");
  process.exit(2);
}
sharp.concurrency(1);
sharp.cache(false);

const input = readFileSync(source);
// A GIF source is loaded with every frame (`edgethumb bench --animated`).
const animated = input.subarray(0, 4).toString("latin1") === "GIF8";
const once = () => {
  // Width 0 is full size; neither engine enlarges (edgethumb does not by default).
  const resized = sharp(input, { animated, limitInputPixels: false }).resize({
    width: Number(width) || undefined,
    withoutEnlargement: true,
  });
  // AVIF: libaom through libheif, at sharp's default effort (4).
  const encoded =
    format === "webp"
      ? resized.webp({ quality: Number(quality) })
      : format === "gif"
        ? resized.gif()
        : format === "avif"
          ? resized.avif({ quality: Number(quality) })
          : resized.jpeg({ quality: Number(quality) });
  return encoded.toBuffer();
};

let body = await once(); // warm-up
const times = [];
for (let i = 0; i < Math.max(1, Number(repeats)); i++) {
  const start = performance.now();
  body = await once();
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
const n = times.length;
const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
writeFileSync(output, body);
console.log(
  JSON.stringify({
    median_ms: median,
    min_ms: times[0],
    bytes: body.length,
    peak_memory_bytes: process.resourceUsage().maxRSS * 1024,
  }),
);
