"""Makes the progressive JPEG fixtures of `jpeg`'s tests with Pillow
(libjpeg-turbo's default progressive script: interleaved DC scans with
successive approximation and a refinement scan, as most progressive JPEGs
on the web are). Run once: `pip install pillow && python3 make.py`."""
import math
from PIL import Image, ImageDraw

W, H = 203, 157  # not multiples of 8 or 16: partial blocks and MCUs
img = Image.new("RGB", (W, H))
px = img.load()
for y in range(H):
    for x in range(W):
        px[x, y] = (int(255 * x / W), int(128 + 100 * math.sin(y / 9)), int(255 * y / H))
d = ImageDraw.Draw(img)
d.ellipse((30, 20, 110, 100), fill=(220, 30, 40))
d.rectangle((120, 60, 190, 140), fill=(20, 200, 60))
d.line((0, H - 1, W - 1, 0), fill=(255, 255, 255), width=5)

img.save("progressive-420-restart.jpg", quality=90, progressive=True, subsampling=2,
         restart_marker_blocks=5)
img.save("progressive-444.jpg", quality=90, progressive=True, subsampling=0)
img.convert("L").save("progressive-grey.jpg", quality=90, progressive=True)
img.save("baseline-420.jpg", quality=90, subsampling=2)

# mozjpeg's optimised progressive script (what sharp/libvips with mozjpeg and
# many CDNs write): other bands than libjpeg's, so some AC scans can be
# skipped at 1/4. `pip install mozjpeg-lossless-optimization`.
import mozjpeg_lossless_optimization as mozjpeg
with open("baseline-420.jpg", "rb") as f:
    baseline = f.read()
with open("progressive-mozjpeg.jpg", "wb") as f:
    f.write(mozjpeg.optimize(baseline))
