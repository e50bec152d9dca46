// Signs test URLs with imgproxy's official Node client, one per line.
//   node tests/clients/sign_node.mjs <endpoint> <key hex> <salt hex> <source url>
// The cases match `NODE_CASES` in tests/support/clients.rs, in order.
import { generateImageUrl } from "@imgproxy/imgproxy-node";

const [endpoint, key, salt, source] = process.argv.slice(2);
const cases = [
  { url: source, options: { resize: { resizing_type: "fit", width: 200 }, quality: 80 } },
  { url: source, options: { resize: { resizing_type: "fill", width: 120, height: 80 }, format: "webp" } },
  { url: { value: source, displayAs: "plain" }, options: { width: 90, format: "png" } },
  { url: source, options: { preset: ["thumb"] } },
];
for (const c of cases) {
  console.log(generateImageUrl({ endpoint, url: c.url, options: c.options, key, salt }));
}
