#!/usr/bin/env python3
"""Goldens for pdiff's resize_bicubic (io/resize.hpp): Pillow's Image.resize(..., BICUBIC) on a random RGB
image, shrinking and enlarging each side (both passes, either pass alone). Writes tests/golden/pillow_resize/:
input.png (40x30) and out_WxH.png for each size. Run: PY=$(tools/refenv.sh); $PY tools/make_pillow_resize_goldens.py"""
import os

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "pillow_resize")
SIZES = [(17, 45), (56, 23), (40, 12), (97, 30), (13, 7), (120, 90), (41, 10), (80, 31), (39, 60)]

os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)
img = Image.fromarray(rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8), "RGB")
img.save(os.path.join(OUT, "input.png"))
for w, h in SIZES:
    img.resize((w, h), Image.BICUBIC).save(os.path.join(OUT, f"out_{w}x{h}.png"))
with open(os.path.join(OUT, "README.md"), "w") as f:
    f.write(f"# pillow_resize\n\nMade by `tools/make_pillow_resize_goldens.py` with Pillow {PIL.__version__}: a random "
            f"40x30 RGB image (`input.png`) and `Image.resize((w, h), Image.BICUBIC)` of it for (w, h) in {SIZES}.\n")
