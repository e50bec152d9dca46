// Sign an edgethumb (imgproxy-format) URL with Node's built-in crypto.
//
//     node examples/sign.mjs
import { createHmac } from "node:crypto";

// The published imgproxy documentation test key/salt. TEST ONLY: never deploy these.
const KEY = Buffer.from("736563726574", "hex");
const SALT = Buffer.from("68656C6C6F", "hex");

export function signedPath(options, sourceUrl, ext = "") {
  const encoded = Buffer.from(sourceUrl).toString("base64url");
  const path = `/${options}/${encoded}${ext ? `.${ext}` : ""}`;
  const signature = createHmac("sha256", KEY).update(SALT).update(path).digest("base64url");
  return `/${signature}${path}`;
}

console.log(signedPath("rs:fill:300:400:0/g:sm", "http://example.com/images/curiosity.jpg", "png"));
