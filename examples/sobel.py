"""The Sobel edge image of a real picture, computed with convpool.conv2d.

    python examples/sobel.py [--image PATH] [--output sobel.png]

The kernel [[-1, -2, -1], [0, 0, 0], [1, 2, 1]] emphasises horizontal lines; the
picture shows its absolute response beside the original. Without --image the picture
comes from an installed package: scikit-image's camera man if scikit-image is
installed, else the Grace Hopper photograph that ships with matplotlib. The PNG shows
both side by side, drawn with matplotlib when it is available (written directly as a
grey-scale PNG otherwise).
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib

import convpool
import numpy as np

SOBEL = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float32)


def packaged_picture() -> tuple[np.ndarray, str]:
    """A real grey picture that ships inside an installed package."""
    try:
        from skimage import data

        return data.camera(), "scikit-image's camera"
    except ImportError:
        pass
    try:
        import matplotlib.image
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as file:
            return matplotlib.image.imread(file, format="jpg"), "matplotlib's grace_hopper.jpg"
    except ImportError:
        raise SystemExit(
            "no picture: install scikit-image or matplotlib, or pass --image") from None


def grey(picture: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 601) of an RGB(A) picture; grey pictures pass through."""
    picture = np.asarray(picture, dtype=np.float32)
    if picture.ndim == 3:
        picture = picture[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return picture


def write_grey_png(path: str, image: np.ndarray) -> None:
    """An 8-bit grey PNG, without any imaging library."""
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per row

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                   + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="a picture file (read with matplotlib)")
    parser.add_argument("--output", default="sobel.png")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of the PNG")
    args = parser.parse_args(argv)

    if args.image:
        import matplotlib.image

        picture, source = matplotlib.image.imread(args.image), args.image
    else:
        picture, source = packaged_picture()
    image = grey(picture)
    if image.max() <= 1.0:  # matplotlib reads PNGs as floats in [0, 1]
        image = image * 255

    start = time.perf_counter()
    edges = np.abs(convpool.conv2d(image, SOBEL, padding="same"))  # one call, 2-D in and out
    milliseconds = (time.perf_counter() - start) * 1e3
    print(f"{source}: {image.shape[0]}x{image.shape[1]}, |Sobel| in {milliseconds:.2f} ms, "
          f"largest response {edges.max():.0f}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        scaled = edges * (255 / max(float(edges.max()), 1e-12))
        write_grey_png(args.output, np.hstack([image, scaled]))
    else:
        figure, axes = plt.subplots(1, 2, figsize=(10, 5 * image.shape[0] / image.shape[1]))
        # The brightest 0.5% of edges saturate, so that fainter ones stay visible.
        for axis, shown, title, top in (
            (axes[0], image, "original", 255),
            (axes[1], edges, "|Sobel| (horizontal lines)", np.percentile(edges, 99.5)),
        ):
            axis.imshow(shown, cmap="gray", vmin=0, vmax=top)
            axis.set_title(title)
            axis.axis("off")
        figure.savefig(args.output, dpi=args.dpi, bbox_inches="tight")
        plt.close(figure)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
