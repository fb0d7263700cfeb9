"""Rendered images and thumbnails of DICOM frames (PS3.18 §8.3.5, §9.5, §10.4).

The pipeline follows the grayscale and colour image transformation model of
PS3.4 §N.2 (Figure N.2-1): stored values → Modality LUT / Rescale
(PS3.3 §C.11.1) → VOI LUT or window (PS3.3 §C.11.2) → Presentation
(MONOCHROME1 is shown inverted, PS3.3 §C.7.6.3.1.2). Colour images are shown
as RGB: YCbCr is converted by the decoder (PS3.3 §C.7.6.3.1.2) and PALETTE
COLOR goes through its Palette Color Lookup Tables (PS3.3 §C.7.6.3.1.5).
The result is scaled to fit the requested viewport (PS3.18 §8.3.5.1.3) and
encoded as JPEG, PNG or GIF (PS3.18 §8.7.4, Table 8.7.4-1; quality per
§8.3.5.1.2).
"""

from __future__ import annotations

import math
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi

from vesalius.core.errors import InvalidInput, NotAcceptable
from vesalius.dicom.pixels import decode_array

__all__ = ["RENDERED_MEDIA_TYPES", "render", "thumbnail"]

#: Pillow format for each rendered media type this module can produce.
RENDERED_MEDIA_TYPES: dict[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
}

_WINDOW_FUNCTIONS = frozenset({"linear", "linear-exact", "sigmoid"})
_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def render(
    ds: Dataset,
    frame: int = 0,
    *,
    window: tuple[float, float, str] | None = None,
    viewport: tuple[int, int] | None = None,
    media_type: str = "image/jpeg",
    quality: int = 90,
) -> bytes:
    """Render frame ``frame`` (0-based) of ``ds`` as a consumer image.

    ``window`` is the WADO-RS ``window`` parameter (PS3.18 §8.3.5.1.4):
    center, width and function (``linear``, ``linear-exact`` or ``sigmoid``,
    PS3.3 §C.11.2.1.2 and §C.11.2.1.3). Without it the data set's first
    Window Center/Width is used, then its first VOI LUT, then the frame's
    minimum and maximum. ``viewport`` is (vw, vh): the image is scaled, aspect
    ratio kept, to the largest size that fits inside it (PS3.18 §8.3.5.1.3).
    ``quality`` (1-100) applies to JPEG (PS3.18 §8.3.5.1.2).

    Raises NotAcceptable for a media type other than image/jpeg, image/png or
    image/gif, for a data set without pixel data and for pixel data that
    cannot be decoded; InvalidInput for a frame out of range or a malformed
    window, viewport or quality.
    """
    media_type = media_type.strip().lower()
    image_format = RENDERED_MEDIA_TYPES.get(media_type)
    if image_format is None:
        raise NotAcceptable(
            f"cannot render as {media_type!r}; supported: {', '.join(RENDERED_MEDIA_TYPES)}"
        )
    if not 1 <= quality <= 100:
        raise InvalidInput(f"quality must be between 1 and 100, got {quality}")
    if viewport is not None and (viewport[0] < 1 or viewport[1] < 1):
        raise InvalidInput(f"viewport must be positive, got {viewport[0]},{viewport[1]}")
    if window is not None:
        window = _checked_window(window)
    if not any(keyword in ds for keyword in _PIXEL_DATA_KEYWORDS):
        raise NotAcceptable("the instance has no pixel data to render")
    number_of_frames = _number_of_frames(ds)
    if not 0 <= frame < number_of_frames:
        raise InvalidInput(
            f"frame {frame + 1} is out of range: the instance has {number_of_frames} frame(s)"
        )

    pixels = _display_pixels(ds, frame, window)
    image = Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB")
    if viewport is not None:
        image = image.resize(_fit(image.size, viewport), Image.Resampling.LANCZOS)
    buffer = BytesIO()
    if image_format == "JPEG":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format=image_format)
    return buffer.getvalue()


def thumbnail(ds: Dataset, *, size: int = 128, media_type: str = "image/jpeg") -> bytes:
    """A thumbnail fitting in ``size`` x ``size`` (PS3.18 §8.3.5.2, §10.4.1.1.4).

    The standard leaves the choice of the representative frame to the origin
    server; we use the first frame, the only one every instance has and the
    one viewers show first. Windowing is the data set's own (as for
    :func:`render` without ``window``).
    """
    if size < 1:
        raise InvalidInput(f"thumbnail size must be positive, got {size}")
    return render(ds, 0, viewport=(size, size), media_type=media_type)


def _display_pixels(
    ds: Dataset, frame: int, window: tuple[float, float, str] | None
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The frame as 8-bit grayscale (rows, columns) or RGB (rows, columns, 3)."""
    arr = decode_array(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    try:
        if photometric == "PALETTE COLOR":
            return _palette_to_rgb(arr, ds)
        if arr.ndim == 3:
            return _color_to_8bit(arr, ds)
        grey = _voi(_modality(arr, ds, frame), ds, frame, window)
    except (AttributeError, KeyError, ValueError, IndexError) as exc:
        raise NotAcceptable(f"pixel data cannot be rendered: {exc}") from exc
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return np.clip(np.rint(grey * 255.0), 0, 255).astype(np.uint8)


def _modality(arr: np.ndarray[Any, Any], ds: Dataset, frame: int) -> FloatArray:
    """Modality LUT or Rescale Slope/Intercept (PS3.3 §C.11.1, §C.7.6.16.2.9 per frame)."""
    if "ModalityLUTSequence" in ds:
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    slope = _frame_value(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = _frame_value(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
    values = arr.astype(np.float64)
    if slope is not None:
        values *= slope
    if intercept is not None:
        values += intercept
    return values


def _voi(
    values: FloatArray, ds: Dataset, frame: int, window: tuple[float, float, str] | None
) -> FloatArray:
    """VOI transformation to [0, 1] (PS3.3 §C.11.2)."""
    if window is None:
        center = _frame_value(ds, frame, "FrameVOILUTSequence", "WindowCenter")
        width = _frame_value(ds, frame, "FrameVOILUTSequence", "WindowWidth")
        if center is not None and width is not None and width > 0:
            function = _frame_text(ds, frame, "FrameVOILUTSequence", "VOILUTFunction")
            name = (function or "LINEAR").strip().lower().replace("_", "-")
            if name not in _WINDOW_FUNCTIONS or (name == "linear" and width < 1):
                name = "linear-exact"
            window = (center, width, name)
    if window is not None:
        return _apply_window(values, *window)
    if "VOILUTSequence" in ds:
        return _apply_voi_lut(values, ds)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def _apply_window(values: FloatArray, center: float, width: float, function: str) -> FloatArray:
    """The window functions of PS3.3 §C.11.2.1.2.1 (LINEAR), §C.11.2.1.3.1 (SIGMOID)
    and §C.11.2.1.3.2 (LINEAR_EXACT), with output range [0, 1]."""
    if function == "sigmoid":
        return np.asarray(1.0 / (1.0 + np.exp(-4.0 * (values - center) / width)), np.float64)
    if function == "linear-exact":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    # LINEAR: x <= c - 0.5 - (w-1)/2 → 0; x > c - 0.5 + (w-1)/2 → 1.
    if width <= 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _apply_voi_lut(values: FloatArray, ds: Dataset) -> FloatArray:
    """First VOI LUT of the VOI LUT Sequence (PS3.3 §C.11.2.1.1), scaled to [0, 1]."""
    item = ds.VOILUTSequence[0]
    descriptor = item.LUTDescriptor
    bits = int(descriptor[2])
    # The LUT input is the Modality LUT output, which is integral for LUT use.
    mapped = apply_voi(np.rint(values).astype(np.int64), ds, index=0).astype(np.float64)
    top = float(2**bits - 1) if bits > 0 else float(mapped.max() or 1.0)
    return np.clip(mapped / top, 0.0, 1.0)


def _palette_to_rgb(arr: np.ndarray[Any, Any], ds: Dataset) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """PALETTE COLOR through its Palette Color Lookup Tables (PS3.3 §C.7.9)."""
    try:
        rgb = apply_color_lut(arr, ds)
    except (AttributeError, KeyError, ValueError, IndexError) as exc:
        raise NotAcceptable(f"palette colour lookup tables unusable: {exc}") from exc
    rgb = rgb[..., :3]
    if rgb.dtype.itemsize > 1 and int(rgb.max(initial=0)) > 255:
        # 16-bit entries span the full 16-bit range (PS3.3 §C.7.6.3.1.5).
        rgb = rgb >> 8
    return np.ascontiguousarray(rgb.astype(np.uint8))


def _color_to_8bit(arr: np.ndarray[Any, Any], ds: Dataset) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """RGB samples of Bits Stored bits mapped to 8 bits; only the first three samples."""
    rgb = arr[..., :3]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype.kind == "f":
        low, high = float(rgb.min()), float(rgb.max())
        scaled = (rgb - low) / (high - low) if high > low else np.zeros_like(rgb)
        return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
    bits_stored = int(ds.get("BitsStored", rgb.dtype.itemsize * 8) or 8)
    top = float(2**bits_stored - 1)
    scaled = rgb.astype(np.float64) / top
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _checked_window(window: tuple[float, float, str]) -> tuple[float, float, str]:
    center, width, function = window
    name = function.strip().lower().replace("_", "-")
    if name not in _WINDOW_FUNCTIONS:
        raise InvalidInput(
            f"window function must be linear, linear-exact or sigmoid, got {function!r}"
        )
    if not (math.isfinite(center) and math.isfinite(width)):
        raise InvalidInput("window center and width must be finite numbers")
    if (name == "linear" and width < 1) or width <= 0:
        raise InvalidInput(f"window width {width} is out of range for {name} (PS3.3 §C.11.2.1.2)")
    return float(center), float(width), name


def _fit(size: tuple[int, int], viewport: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the aspect ratio of ``size`` that fits in ``viewport``."""
    width, height = size
    scale = min(viewport[0] / width, viewport[1] / height)
    return (
        max(1, min(viewport[0], round(width * scale))),
        max(1, min(viewport[1], round(height * scale))),
    )


def _number_of_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _lookup(ds: Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """An attribute from the frame's functional groups, else the top level.

    Per-frame, then shared functional groups (PS3.3 §C.7.6.16), then the
    data set itself.
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    candidates: list[Dataset] = []
    if per_frame is not None and frame < len(per_frame):
        candidates.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        candidates.append(shared[0])
    for group in candidates:
        items = group.get(sequence)
        if items and keyword in items[0]:
            return items[0].get(keyword)
    return ds.get(keyword)


def _frame_value(ds: Dataset, frame: int, sequence: str, keyword: str) -> float | None:
    value = _lookup(ds, frame, sequence, keyword)
    if value is None or value == "":
        return None
    if not isinstance(value, str | bytes | int | float) and hasattr(value, "__getitem__"):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _frame_text(ds: Dataset, frame: int, sequence: str, keyword: str) -> str | None:
    value = _lookup(ds, frame, sequence, keyword)
    if value is None:
        return None
    if not isinstance(value, str) and hasattr(value, "__getitem__") and len(value):
        value = value[0]
    return str(value)
