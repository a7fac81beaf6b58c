"""Read any image file as an upright RGB picture, or say clearly why not.

Real trash datasets contain everything: truncated JPEGs from interrupted uploads, PNGs with
alpha, CMYK scans, palette GIF-like PNGs, phone photos whose pixels are stored sideways with
an EXIF orientation tag. One function handles all of them so that every loader agrees.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class BadImage(ValueError):
    """An image file that cannot be decoded; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        """Keep path and reason apart: reports list the reason per file without re-parsing."""
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def missing_reason(path: Path | str) -> str:
    """Why a path has no file behind it, worded for a report: a dangling link says where it
    pointed, because "missing" alone sends the user looking in the wrong folder."""
    path = Path(path)
    if path.is_symlink():
        return f"missing file (dangling symbolic link to {os.readlink(path)})"
    return "missing file (no such file: deleted or moved since it was listed?)"


class NoScale(ValueError):
    """A high-bit-depth image whose values say nothing about how bright they are."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparent pixels become white, not black."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    if img.mode != "RGB":  # L, 1, I, F, CMYK, YCbCr ...
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            img = _to_8bit(img)
        img = img.convert("RGB")
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """A one-channel 16-bit, 32-bit integer or float image as 8-bit grey, scaled by what its
    values say: floats in [0, 1] (scientific TIFFs) times 255, integers or floats that fit
    0..255 as they are, 16-bit values divided by 257. Anything else has no scale we can
    trust: refused (:class:`NoScale`) rather than decoded black or white."""
    lo, hi = img.getextrema()
    if lo < 0:
        raise NoScale(f"{img.mode} image with negative values (min {lo}): no known scale")
    if img.mode == "F" and hi <= 1.0:
        scale = 255.0
    elif hi <= 255:
        scale = 1.0
    elif hi <= 65535 and img.mode != "F":
        scale = 1 / 257
    else:
        raise NoScale(f"{img.mode} image with values up to {hi}: no known scale")
    return img.point(lambda v: v * scale).convert("L")


def open_rgb(path: Path | str, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``path`` fully into an upright RGB image.

    ``draft_size`` lets libjpeg decode at a reduced scale (1/2, 1/4, 1/8) when we only need a
    small picture anyway, which is several times faster for big photos. EXIF orientation is
    applied so a sideways phone photo is seen the way its owner saw it.
    Raises :class:`BadImage` (never a bare PIL error) for anything undecodable, and for a
    missing file (or dangling link) with a reason that says so rather than "corrupt".
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if draft_size is not None and img.format == "JPEG":
                # draft() keeps the EXIF orientation semantics; ask for >= the target on both
                # axes (either orientation) so the later resize only ever shrinks.
                side = max(draft_size)
                img.draft("RGB", (side, side))
            img.load()  # forces a full decode: truncated files fail here, not later
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except FileNotFoundError:
        raise BadImage(path, missing_reason(path)) from None
    except IsADirectoryError:
        raise BadImage(path, "not a file (a folder)") from None
    except PermissionError:
        raise BadImage(path, "unreadable (permission denied)") from None
    except UnidentifiedImageError:
        raise BadImage(path, "not an image file (PIL cannot identify it)") from None
    except NoScale as exc:
        raise BadImage(path, f"refused: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise BadImage(path, f"corrupt or truncated image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise BadImage(path, f"refused: {exc}") from None
