"""Frame byte ranges in stored files and native frame decoding (vesalius.dicom.pixels)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEGBaseline8Bit

from vesalius.core.errors import InvalidInput, NotAcceptable, NotFound
from vesalius.dicom.pixels import FrameRange, PixelLayout, decode_frame, pixel_layout, read_frame

NATIVE = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "SC_rgb.dcm",
    "SC_rgb_2frame.dcm",
    "SC_rgb_16bit_2frame.dcm",
    "SC_rgb_32bit_2frame.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "SC_rgb_small_odd.dcm",
    "emri_small.dcm",
    "emri_small_big_endian.dcm",
    "rtdose.dcm",
    "examples_palette.dcm",
]

ENCAPSULATED = [
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "emri_small_RLE.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
    "US1_J2KR.dcm",
    "rtdose_rle.dcm",
]


def _path(name: str) -> Path:
    found = get_testdata_file(name)
    assert found is not None, name
    return Path(str(found))


def _frames(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


@pytest.mark.parametrize("name", NATIVE)
def test_native_frames_match_pixel_data(name: str) -> None:
    path = _path(name)
    ds = pydicom.dcmread(path)
    layout = pixel_layout(path)

    assert layout is not None
    assert not layout.encapsulated
    assert layout.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
    assert layout.number_of_frames == _frames(ds)
    joined = b"".join(read_frame(path, layout, i) for i in range(layout.number_of_frames))
    # Stored Pixel Data may carry trailing padding past the last frame.
    assert ds.PixelData[: len(joined)] == joined
    assert len(ds.PixelData) - len(joined) < len(joined) // layout.number_of_frames


@pytest.mark.parametrize("name", ENCAPSULATED)
def test_encapsulated_frames_match_pydicom(name: str) -> None:
    path = _path(name)
    ds = pydicom.dcmread(path)
    layout = pixel_layout(path)

    assert layout is not None
    assert layout.encapsulated
    assert layout.number_of_frames == _frames(ds)
    expected = list(generate_frames(ds.PixelData, number_of_frames=_frames(ds)))
    got = [read_frame(path, layout, i) for i in range(layout.number_of_frames)]
    assert got == expected
    for ranges in layout.frames:
        assert all(isinstance(r, FrameRange) and r.length > 0 for r in ranges)


def test_ranges_point_at_fragment_values(tmp_path: Path) -> None:
    path = _path("SC_rgb_rle_2frame.dcm")
    layout = pixel_layout(path)
    assert layout is not None
    raw = path.read_bytes()
    for (frame_range,) in layout.frames:
        # The 8 bytes before a fragment value are its item header (PS3.5 §A.4).
        header = raw[frame_range.offset - 8 : frame_range.offset]
        assert struct.unpack("<HHL", header) == (0xFFFE, 0xE000, frame_range.length)


def _write_encapsulated(
    tmp_path: Path, frames: list[bytes], *, fragments_per_frame: int, bot: bool, eot: bool = False
) -> Path:
    ds = pydicom.dcmread(_path("SC_rgb_rle_2frame.dcm"))
    if eot:
        from pydicom.encaps import encapsulate_extended

        data, offsets, _padded_lengths = encapsulate_extended(frames)
        ds.ExtendedOffsetTable = offsets
        # Frame lengths without the fragments' trailing padding byte.
        ds.ExtendedOffsetTableLengths = struct.pack(f"<{len(frames)}Q", *map(len, frames))
    else:
        data = encapsulate(frames, fragments_per_frame=fragments_per_frame, has_bot=bot)
    ds.PixelData = data
    ds["PixelData"].is_undefined_length = True
    ds.NumberOfFrames = len(frames)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    out = tmp_path / "synthetic.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def _jpeg_like(i: int, size: int = 40) -> bytes:
    body = bytes((i * 7 + k) % 200 for k in range(size))
    return b"\xff\xd8\xff\xe0" + body + b"\xff\xd9"


def test_basic_offset_table_groups_fragments(tmp_path: Path) -> None:
    frames = [_jpeg_like(i) for i in range(3)]
    path = _write_encapsulated(tmp_path, frames, fragments_per_frame=2, bot=True)
    layout = pixel_layout(path)
    assert layout is not None
    assert [len(ranges) for ranges in layout.frames] == [2, 2, 2]
    assert [read_frame(path, layout, i) for i in range(3)] == frames


def test_extended_offset_table(tmp_path: Path) -> None:
    frames = [_jpeg_like(i, 30 + i) for i in range(4)]  # odd and even lengths
    path = _write_encapsulated(tmp_path, frames, fragments_per_frame=1, bot=False, eot=True)
    layout = pixel_layout(path)
    assert layout is not None
    assert [read_frame(path, layout, i) for i in range(4)] == frames


def test_frame_start_markers_without_offset_table(tmp_path: Path) -> None:
    frames = [_jpeg_like(i) for i in range(3)]
    path = _write_encapsulated(tmp_path, frames, fragments_per_frame=2, bot=False)
    layout = pixel_layout(path)
    assert layout is not None
    assert [read_frame(path, layout, i) for i in range(3)] == frames


def test_undeterminable_frames_give_none(tmp_path: Path) -> None:
    # Three fragments, two frames, no table and no recognisable frame starts.
    frames = [b"\x01\x02" * 10, b"\x03\x04" * 10, b"\x05\x06" * 10]
    path = _write_encapsulated(tmp_path, frames, fragments_per_frame=1, bot=False)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.save_as(path, enforce_file_format=True)
    assert pixel_layout(path) is None


def test_deflated_gives_none() -> None:
    assert pixel_layout(_path("image_dfl.dcm")) is None


@pytest.mark.parametrize("name", ["test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm"])
def test_no_pixel_data_gives_none(name: str) -> None:
    assert pixel_layout(_path(name)) is None


def test_truncated_native_gives_none() -> None:
    assert pixel_layout(_path("MR_truncated.dcm")) is None


def test_bit_packed_multiframe_gives_none(tmp_path: Path) -> None:
    ds = pydicom.dcmread(_path("MR_small.dcm"))
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 3, 3, 1, 1, 0
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = 2
    ds.PixelData = b"\x55\x55\x55"
    out = tmp_path / "bits.dcm"
    ds.save_as(out, enforce_file_format=True)
    assert pixel_layout(out) is None


def test_not_dicom_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "junk.dcm"
    path.write_bytes(b"\x00\x01not dicom at all" * 3)
    with pytest.raises(InvalidInput):
        pixel_layout(path)


def test_read_frame_out_of_range() -> None:
    path = _path("emri_small.dcm")
    layout = pixel_layout(path)
    assert isinstance(layout, PixelLayout)
    with pytest.raises(NotFound):
        read_frame(path, layout, layout.number_of_frames)
    with pytest.raises(InvalidInput):
        read_frame(path, layout, -1)


def test_read_frame_on_truncated_copy(tmp_path: Path) -> None:
    path = _path("CT_small.dcm")
    layout = pixel_layout(path)
    assert layout is not None
    copy = tmp_path / "short.dcm"
    shutil.copy(path, copy)
    with copy.open("r+b") as fp:
        fp.truncate(layout.frames[0][0].offset + 10)
    with pytest.raises(InvalidInput):
        read_frame(copy, layout, 0)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_decode_frame_same_samples_in_every_transfer_syntax(name: str) -> None:
    reference = pydicom.dcmread(_path("MR_small.dcm")).pixel_array
    data = decode_frame(pydicom.dcmread(_path(name)), 0)
    assert np.array_equal(np.frombuffer(data, dtype="<i2").reshape(reference.shape), reference)


@pytest.mark.parametrize(
    "name", ["emri_small.dcm", "emri_small_RLE.dcm", "emri_small_big_endian.dcm"]
)
def test_decode_frame_multiframe(name: str) -> None:
    ds = pydicom.dcmread(_path(name))
    reference = pydicom.dcmread(_path("emri_small.dcm")).pixel_array
    for index in (0, 4, 9):
        data = decode_frame(ds, index)
        frame = np.frombuffer(data, dtype="<u2").reshape(reference.shape[1:])
        assert np.array_equal(frame, reference[index])


def test_decode_frame_ycbcr_jpeg_gives_rgb() -> None:
    ds = pydicom.dcmread(_path("SC_rgb_jpeg_dcmtk.dcm"))
    data = decode_frame(ds, 0)
    assert len(data) == ds.Rows * ds.Columns * 3
    rgb = np.frombuffer(data, np.uint8).reshape(ds.Rows, ds.Columns, 3)
    # Top band of the test pattern is red.
    assert rgb[5, 50, 0] > 200 and rgb[5, 50, 1] < 60 and rgb[5, 50, 2] < 60


def test_decode_frame_native_ybr_422_returned_as_stored() -> None:
    ds = pydicom.dcmread(_path("SC_ybr_full_422_uncompressed.dcm"))
    assert decode_frame(ds, 0) == ds.PixelData[: ds.Rows * ds.Columns * 2]


def test_decode_frame_12_bit_jpeg_extended_is_not_acceptable() -> None:
    ds = pydicom.dcmread(_path("JPEG-lossy.dcm"))
    with pytest.raises(NotAcceptable, match="cannot be decoded"):
        decode_frame(ds, 0)


def test_decode_frame_errors() -> None:
    ds = pydicom.dcmread(_path("CT_small.dcm"))
    with pytest.raises(NotFound):
        decode_frame(ds, 1)
    with pytest.raises(InvalidInput):
        decode_frame(ds, -1)
    with pytest.raises(NotAcceptable):
        decode_frame(pydicom.dcmread(_path("test-SR.dcm")), 0)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm",
                                  "emri_small.dcm", "SC_rgb_rle_2frame.dcm",
                                  "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_layout_from_already_parsed_dataset_matches_path_parse(name: str) -> None:
    path = Path(get_testdata_file(name))
    parsed = pydicom.dcmread(path, defer_size=2048)
    assert pixel_layout(path, parsed) == pixel_layout(path)
