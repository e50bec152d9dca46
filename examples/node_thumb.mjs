// A media API's thumbnail route in Node: answers with a 302 to a signed
// edgethumb URL made by imgproxy's official client (npm i @imgproxy/imgproxy-node).
//
//     EDGETHUMB_BASE=http://127.0.0.1:8080 EDGETHUMB_KEY=<hex> EDGETHUMB_SALT=<hex> \
//       node examples/node_thumb.mjs
//     curl -i 'http://127.0.0.1:3000/v1/images/thumb/?url=https://example.com/cat.jpg'
//
// (A real API looks the source up by the image's id; here it is a query parameter.)
import { createServer } from "node:http";
import { generateImageUrl } from "@imgproxy/imgproxy-node";

const { EDGETHUMB_BASE, EDGETHUMB_KEY, EDGETHUMB_SALT, PORT = "3000" } = process.env;

// The `thumb` and `full` presets are configured on edgethumb
// (EDGETHUMB_PRESETS=thumb=rs:fit:600:0/q:80,full=q:80).
export function thumbnailUrl(sourceUrl, fullSize = false) {
  return generateImageUrl({
    endpoint: EDGETHUMB_BASE,
    url: sourceUrl,
    options: { preset: [fullSize ? "full" : "thumb"] },
    key: EDGETHUMB_KEY,
    salt: EDGETHUMB_SALT,
  });
}

createServer((req, res) => {
  const u = new URL(req.url, "http://localhost");
  const source = u.searchParams.get("url");
  if (u.pathname !== "/v1/images/thumb/" || !source) {
    res.writeHead(404).end("not found\n");
    return;
  }
  res.writeHead(302, { location: thumbnailUrl(source, u.searchParams.get("full_size") === "true") });
  res.end();
}).listen(Number(PORT), "127.0.0.1", () => console.log(`on http://127.0.0.1:${PORT}`));
