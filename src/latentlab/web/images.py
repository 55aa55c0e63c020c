"""Image bytes for the web explorer: fast PNG encoding and checked decoding of uploads.

PNG encoding uses Pillow at ``compress_level=1``: for a 64x64 image it is a fraction of a
millisecond, and a slider update is dominated by the decoder instead. Uploads are decoded the
way ``latentlab`` reads a ``folder:`` of images (``latentlab.data.decode``): converted to RGB
or grayscale and resized (bilinear) to the model's input size.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from latentlab.data.decode import Geometry, Item, decode_images
from latentlab.errors import LatentlabError

UPLOAD_FORMATS = ("PNG", "JPEG")
MAX_UPLOAD_PIXELS = 40_000_000  # width * height; a 5 MB PNG can hold a decompression bomb


def png_bytes(pixels: np.ndarray, compress_level: int = 1) -> bytes:
    """uint8 pixels (H, W, C) with C in (1, 3) -> PNG file bytes."""
    if pixels.ndim != 3 or pixels.dtype != np.uint8 or pixels.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 pixels (H, W, 1|3), got {pixels.dtype} {pixels.shape}")
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def data_url(png: bytes) -> str:
    """PNG bytes as a ``data:`` URL that an ``<img src>`` shows without another request."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def decode_upload(data: bytes, name: str, in_shape: tuple[int, int, int],
                  geometry: Geometry | None = None) -> np.ndarray:
    """An uploaded PNG/JPEG -> uint8 (1, H, W, C) at the model's input shape (C, H, W), cut by
    ``geometry`` (the run's input rule; default: resized to the model's size) while decoded.

    Raises LatentlabError for anything that is not a readable PNG or JPEG, or whose pixel
    count is implausibly large. RGB is turned into gray (ITU-R 601 luma) for a 1-channel model,
    gray is repeated to RGB for a 3-channel one.
    """
    c, h, w = in_shape
    label = f"upload '{name[:60]}'"
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, size = probe.format, probe.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise LatentlabError(f"{label}: not a readable image; expected a PNG or JPEG file") from None
    if fmt not in UPLOAD_FORMATS:
        raise LatentlabError(f"{label}: is a {fmt} image; expected a PNG or JPEG file")
    if size[0] * size[1] > MAX_UPLOAD_PIXELS:
        raise LatentlabError(f"{label}: {size[0]}x{size[1]} pixels is too large; "
                             f"expected at most {MAX_UPLOAD_PIXELS:,} pixels")
    geometry = geometry or Geometry(resize=(h, w))
    pixels = decode_images([Item(name, data)], label, geometry=geometry)  # (1, h, w, 1|3)
    if pixels.shape[1:3] != (h, w):
        raise LatentlabError(f"{label}: gives {pixels.shape[1]}x{pixels.shape[2]} pixels under the run's "
                             f"input rule; the model expects {h}x{w}")
    if pixels.shape[-1] == c:
        return pixels
    if c == 3:
        return np.repeat(pixels, 3, axis=-1)
    luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (1, h, w)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
