// The peer users would deploy: a Worker as @cf-wasm/photon's README shows it
// (fetch, decode, resize, encode), with Lanczos3 and JPEG q80 as the issue
// that asked for it measures, for `edgethumb bench` (bench/workerd.mjs runs
// it under `wrangler dev`). Query: src (the image URL), w, q. It adds only
// a Server-Timing header, read with the same clock as edgethumb's Worker:
// its fetch, and decode, resize and encode together as one `decode` stage.
import { PhotonImage, SamplingFilter, resize } from "@cf-wasm/photon/workerd";

export default {
  async fetch(request) {
    const query = new URL(request.url).searchParams;
    const started = Date.now();
    const inputBytes = await fetch(query.get("src"))
      .then((res) => res.arrayBuffer())
      .then((buffer) => new Uint8Array(buffer));
    const fetched = Date.now();
    const inputImage = PhotonImage.new_from_byteslice(inputBytes);
    const width = Number(query.get("w"));
    const height = Math.max(
      1,
      Math.round((inputImage.get_height() * width) / inputImage.get_width()),
    );
    const outputImage = resize(inputImage, width, height, SamplingFilter.Lanczos3);
    const outputBytes = outputImage.get_bytes_jpeg(Number(query.get("q")));
    inputImage.free();
    outputImage.free();
    const done = Date.now();
    return new Response(outputBytes, {
      headers: {
        "Content-Type": "image/jpeg",
        "Server-Timing": `fetch;dur=${fetched - started}, decode;dur=${done - fetched}`,
      },
    });
  },
};
