"""Rendered images and thumbnails (vesalius.render.image)."""

from __future__ import annotations

import itertools
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from vesalius.core.errors import InvalidInput, NotAcceptable
from vesalius.render.image import render, thumbnail


def _read(name: str) -> Dataset:
    found = get_testdata_file(name)
    assert found is not None, name
    return pydicom.dcmread(Path(str(found)))


def _open(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def _grey(pixels: np.ndarray, photometric: str, **attributes: object) -> Dataset:
    """A tiny single-frame grayscale image built in memory."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


RAMP = np.tile(np.arange(0, 4000, 250, dtype=np.uint16), (8, 1))  # 8 rows x 16 columns


def test_render_ct_with_window_decodes_to_full_size() -> None:
    ds = _read("CT_small.dcm")
    image = _open(render(ds, window=(40.0, 400.0, "linear")))
    assert image.format == "JPEG"
    assert image.size == (ds.Columns, ds.Rows)
    assert image.mode == "L"


@pytest.mark.parametrize(("media_type", "fmt"), [("image/png", "PNG"), ("image/gif", "GIF")])
def test_render_other_formats(media_type: str, fmt: str) -> None:
    image = _open(render(_read("CT_small.dcm"), media_type=media_type))
    assert image.format == fmt


def test_window_changes_the_image() -> None:
    ds = _read("CT_small.dcm")
    narrow = np.asarray(_open(render(ds, window=(40.0, 80.0, "linear"), media_type="image/png")))
    wide = np.asarray(_open(render(ds, window=(40.0, 2000.0, "linear"), media_type="image/png")))
    assert not np.array_equal(narrow, wide)
    # A narrow window saturates more pixels.
    assert np.count_nonzero((narrow == 0) | (narrow == 255)) > np.count_nonzero(
        (wide == 0) | (wide == 255)
    )


@pytest.mark.parametrize("function", ["linear", "linear-exact", "sigmoid", "LINEAR_EXACT"])
def test_window_functions(function: str) -> None:
    ds = _grey(RAMP, "MONOCHROME2")
    png = np.asarray(_open(render(ds, window=(2000.0, 2000.0, function), media_type="image/png")))
    row = png[0].astype(int)
    assert row[0] < 30 and row[-1] > 225
    assert all(b >= a for a, b in itertools.pairwise(row))  # monotonic


@pytest.mark.parametrize(
    ("viewport", "expected"),
    [((64, 64), (64, 64)), ((32, 100), (32, 32)), ((300, 200), (200, 200)), ((1, 1), (1, 1))],
)
def test_viewport_fits_keeping_aspect(viewport: tuple[int, int], expected: tuple[int, int]) -> None:
    assert _open(render(_read("CT_small.dcm"), viewport=viewport)).size == expected


def test_viewport_on_non_square_image() -> None:
    ds = _grey(RAMP, "MONOCHROME2")  # 16 wide x 8 high
    assert _open(render(ds, viewport=(64, 64), media_type="image/png")).size == (64, 32)
    assert _open(render(ds, viewport=(64, 8), media_type="image/png")).size == (16, 8)


def test_monochrome1_is_inverted() -> None:
    common = {"WindowCenter": 2000, "WindowWidth": 4000}
    mono2 = np.asarray(_open(render(_grey(RAMP, "MONOCHROME2", **common), media_type="image/png")))
    mono1 = np.asarray(_open(render(_grey(RAMP, "MONOCHROME1", **common), media_type="image/png")))
    assert mono2[0, 0] < 20 and mono1[0, 0] > 235
    assert np.array_equal(mono1.astype(int), 255 - mono2.astype(int))


def test_rescale_applies_before_window() -> None:
    # With intercept -1000 the ramp 0..3750 becomes -1000..2750; a window
    # centred on 0 puts the middle of the ramp near 0.
    ds = _grey(RAMP, "MONOCHROME2", RescaleSlope=1, RescaleIntercept=-1000)
    png = np.asarray(_open(render(ds, window=(0.0, 100.0, "linear"), media_type="image/png")))
    assert png[0, 3] == 0 and png[0, 5] == 255  # stored 750 → -250, 1250 → 250


def test_dataset_window_used_by_default() -> None:
    ds = _grey(RAMP, "MONOCHROME2", WindowCenter=[500, 2000], WindowWidth=[10, 4000])
    png = np.asarray(_open(render(ds, media_type="image/png")))
    # First window (500 ± 5) is a near threshold at 500.
    assert png[0, 1] == 0 and png[0, 3] == 255


def test_min_max_when_no_window() -> None:
    png = np.asarray(_open(render(_grey(RAMP, "MONOCHROME2"), media_type="image/png")))
    assert png[0, 0] == 0 and png[0, -1] == 255


def test_rgb_passes_through() -> None:
    ds = _read("SC_rgb.dcm")
    image = _open(render(ds, media_type="image/png"))
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), ds.pixel_array)


def test_ycbcr_jpeg_rendered_as_rgb() -> None:
    image = _open(render(_read("SC_rgb_jpeg_dcmtk.dcm"), media_type="image/png"))
    r, g, b = np.asarray(image)[5, 50].astype(int)
    assert image.mode == "RGB" and r > 200 and g < 60 and b < 60  # red band


def test_16_bit_rgb_scaled_to_8_bit() -> None:
    image = _open(render(_read("SC_rgb_rle_16bit.dcm"), media_type="image/png"))
    assert image.mode == "RGB"
    assert np.asarray(image).max() == 255


def test_palette_color_becomes_rgb() -> None:
    ds = _read("examples_palette.dcm")
    image = _open(render(ds, media_type="image/png"))
    assert image.mode == "RGB"
    assert image.size == (ds.Columns, ds.Rows)
    assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 10


def test_multiframe_frame_selection() -> None:
    ds = _read("emri_small.dcm")
    first = np.asarray(_open(render(ds, 0, media_type="image/png")))
    last = np.asarray(_open(render(ds, ds.NumberOfFrames - 1, media_type="image/png")))
    assert not np.array_equal(first, last)


def test_thumbnail_fits_size() -> None:
    image = _open(thumbnail(_read("examples_palette.dcm"), size=64, media_type="image/png"))
    assert max(image.size) == 64 and image.format == "PNG"


def test_unsupported_media_type() -> None:
    with pytest.raises(NotAcceptable):
        render(_read("CT_small.dcm"), media_type="image/jp2")


def test_frame_out_of_range() -> None:
    with pytest.raises(InvalidInput):
        render(_read("CT_small.dcm"), 1)
    with pytest.raises(InvalidInput):
        render(_read("emri_small.dcm"), -1)


def test_undecodable_pixel_data() -> None:
    with pytest.raises(NotAcceptable, match="cannot be decoded"):
        render(_read("JPEG-lossy.dcm"))


def test_no_pixel_data() -> None:
    with pytest.raises(NotAcceptable, match="no pixel data"):
        render(_read("test-SR.dcm"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": (40.0, 0.5, "linear")},
        {"window": (40.0, 0.0, "sigmoid")},
        {"window": (40.0, 400.0, "cubic")},
        {"viewport": (0, 10)},
        {"quality": 0},
    ],
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        render(_read("CT_small.dcm"), **kwargs)  # type: ignore[arg-type]


def test_thumbnail_bad_size() -> None:
    with pytest.raises(InvalidInput):
        thumbnail(_read("CT_small.dcm"), size=0)
