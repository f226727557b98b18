"""One decode for every image: the pixels a viewer shows, from files each test writes with Pillow."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from tune_app.training.datasets import BadImagesError, DataConfig, build_data, scan_folder
from tune_app.training.datasets.imaging import decode, frame, load_rgb, square

SIDE = 40  # the stored square of the folder tests: image_size 35 at crop_pct 0.875


def picture(width: int = 48, height: int = 36, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric RGB picture: every orientation of it is a different array."""
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + 2 * yy) * 255 // (width + 2 * height)], -1)
    return np.clip(base + rng.integers(-8, 8, base.shape), 0, 255).astype(np.uint8)


# the inverse of each EXIF orientation: what a camera stores so that the viewer shows `picture` upright
STORED = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, 1), 7: lambda a: np.rot90(a, 1)[:, ::-1],
          8: lambda a: np.rot90(a, -1)}


def save_oriented(path: Path, upright: np.ndarray, orientation: int, **save) -> Path:
    """``upright`` stored as a camera would, with the EXIF orientation that shows it upright again."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(STORED[orientation](upright))).save(path, exif=exif, **save)
    return path


def png16_rgb(path: Path, values: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG written byte by byte (Pillow cannot write one)."""
    height, width, _ = values.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def scaled16(values: np.ndarray) -> np.ndarray:
    return np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


# ------------------------------------------------------------------ orientation
@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_decodes_upright(tmp_path, orientation):
    upright = picture()
    path = save_oriented(tmp_path / f"o{orientation}.png", upright, orientation)  # lossless: exact pixels
    decoded = decode(str(path))
    assert decoded.size == (48, 36)
    assert np.array_equal(np.asarray(decoded.image), upright)
    with Image.open(path) as stored:  # Pillow's own reading of the tag agrees
        assert np.array_equal(np.asarray(ImageOps.exif_transpose(stored)), upright)
    assert np.array_equal(np.asarray(frame(decoded, SIDE, crop=35)), np.asarray(square(Image.fromarray(upright),
                                                                                         SIDE, crop=35)))


def test_a_broken_exif_block_is_ignored_quietly(tmp_path, recwarn):
    path = tmp_path / "broken.jpg"
    Image.fromarray(picture()).save(path, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00")
    assert np.asarray(load_rgb(str(path))).shape == (36, 48, 3)
    assert not [w for w in recwarn if "EXIF" in str(w.message)]


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_large_jpeg_is_drafted_and_framed_as_its_full_decode(tmp_path, orientation):
    upright = np.asarray(Image.fromarray(picture(80, 60, seed=orientation)).resize((1203, 901), Image.BILINEAR))
    path = save_oriented(tmp_path / "big.jpg", upright, orientation, quality=95)
    drafted, full = decode(str(path), SIDE), decode(str(path))
    assert drafted.image.width < 400 and drafted.size == full.size == (1203, 901)  # 1/4 scale (1/8 is < 40 px)
    gap = np.abs(np.asarray(frame(drafted, SIDE, crop=35), dtype=int) - np.asarray(frame(full, SIDE, crop=35)))
    assert gap.mean() < 1.5 and gap.max() < 24


# ------------------------------------------------------------------ bit depth and colour
@pytest.mark.parametrize(("fmt", "dtype"), [("PNG", ">u2"), ("TIFF", "<u2"), ("TIFF", ">u2")])  # PNG: big-endian only
def test_16_bit_grayscale_is_scaled_by_its_range_not_clipped(tmp_path, fmt, dtype):
    values = np.array([[0, 257, 4095, 32768, 65535, 1000]], dtype=dtype).repeat(3, 0)
    path = tmp_path / f"gray.{fmt.lower()}"
    Image.fromarray(values).save(path, fmt)
    if fmt == "TIFF":
        assert path.read_bytes()[:2] == (b"II" if dtype == "<u2" else b"MM")
    rgb = np.asarray(load_rgb(str(path)))
    assert np.array_equal(rgb[..., 0], scaled16(values)) and (rgb == rgb[..., :1]).all()
    assert rgb[0, 2, 0] == 16  # 12-bit white stored in 16 bits stays dark, as a viewer shows it


def test_32_bit_grayscale_scales_by_16_bits_when_it_fits_else_by_its_range(tmp_path):
    fits = np.array([[0, 4095, 65535]], dtype=np.int32)
    Image.fromarray(fits).save(tmp_path / "fits.tif")
    assert np.asarray(load_rgb(str(tmp_path / "fits.tif")))[0, :, 0].tolist() == [0, 16, 255]
    wide = np.array([[-5, 2**30, 2**31 - 1]], dtype=np.int32)
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    assert Image.open(tmp_path / "wide.tif").mode == "I"
    assert np.asarray(load_rgb(str(tmp_path / "wide.tif")))[0, :, 0].tolist() == [0, 128, 255]


def test_16_bit_rgb_is_within_one_of_the_scaled_values(tmp_path):
    values = (np.random.default_rng(0).integers(0, 65536, (8, 10, 3))).astype(np.uint16)
    rgb = np.asarray(load_rgb(str(png16_rgb(tmp_path / "rgb16.png", values))), dtype=int)
    assert np.abs(rgb - scaled16(values)).max() <= 1


def test_cmyk_and_lab_become_the_rgb_they_mean(tmp_path):
    upright = picture() // 2 + 64  # inside every gamut on the way
    Image.fromarray(upright).convert("CMYK").save(tmp_path / "cmyk.tif")
    assert Image.open(tmp_path / "cmyk.tif").mode == "CMYK"
    assert np.abs(np.asarray(load_rgb(str(tmp_path / "cmyk.tif")), dtype=int) - upright).max() <= 1
    lab = ImageCms.profileToProfile(Image.fromarray(upright), ImageCms.createProfile("sRGB"),
                                    ImageCms.createProfile("LAB"), outputMode="LAB")
    lab.save(tmp_path / "lab.tif")
    assert Image.open(tmp_path / "lab.tif").mode == "LAB"
    gap = np.abs(np.asarray(load_rgb(str(tmp_path / "lab.tif")), dtype=int) - upright)
    assert gap.mean() < 1.5 and gap.max() <= 12  # LAB's 8-bit a and b are coarse


def linear_rgb_profile() -> bytes:
    """An ICC v2 profile of linear-light RGB with sRGB's primaries (a matrix and gamma-1.0 curves), by hand.

    Pillow creates only sRGB, LAB and XYZ profiles; this one stores the same colours as
    different numbers, so a decode that ignored it would show them too dark.
    """
    def s15(*values: float) -> bytes:
        return b"".join(struct.pack(">i", round(v * 65536)) for v in values)

    def xyz(*values: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(*values)

    text = b"linear sRGB\0"
    tags = {b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67),
            b"wtpt": xyz(0.9642, 1.0, 0.8249), b"rXYZ": xyz(0.4361, 0.2225, 0.0139),
            b"gXYZ": xyz(0.3851, 0.7169, 0.0971), b"bXYZ": xyz(0.1431, 0.0606, 0.7141),
            **{kind: b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0" for kind in (b"rTRC", b"gTRC", b"bTRC")},
            b"cprt": b"text\0\0\0\0none\0\0\0\0"}
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for kind, data in tags.items():
        data += bytes(-len(data) % 4)
        table += kind + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(24) + struct.pack(">I", 0) + s15(0.9642, 1.0, 0.8249))
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def srgb_encoded(linear: np.ndarray) -> np.ndarray:
    value = linear / 255.0
    return 255 * np.where(value <= 0.0031308, 12.92 * value, 1.055 * value ** (1 / 2.4) - 0.055)


def test_an_embedded_icc_profile_is_converted_to_srgb(tmp_path):
    stored = picture() // 2 + 64  # the numbers in the file: linear light
    Image.fromarray(stored).save(tmp_path / "linear.jpg", quality=98, icc_profile=linear_rgb_profile())
    with Image.open(tmp_path / "linear.jpg") as raw:
        as_stored = np.asarray(raw.convert("RGB"), dtype=float)
    shown = np.asarray(load_rgb(str(tmp_path / "linear.jpg")), dtype=float)
    assert np.abs(shown - as_stored).mean() > 20  # the profile changes what the numbers mean
    assert np.abs(shown - srgb_encoded(as_stored)).max() <= 2
    # a profile ImageCms cannot read is passed over: the numbers as stored
    Image.fromarray(stored).save(tmp_path / "junk.jpg", quality=98, icc_profile=b"not a profile at all")
    with Image.open(tmp_path / "junk.jpg") as raw:
        assert np.array_equal(np.asarray(load_rgb(str(tmp_path / "junk.jpg"))), np.asarray(raw.convert("RGB")))


# ------------------------------------------------------------------ formats
def two_frames(path: Path, fmt: str, **save) -> tuple[np.ndarray, np.ndarray]:
    """A two-frame file whose frames differ everywhere; returns them."""
    first, second = picture(), 255 - picture(seed=1)
    Image.fromarray(first).save(path, fmt, save_all=True, append_images=[Image.fromarray(second)], **save)
    return first, second


@pytest.mark.parametrize(("name", "fmt", "save", "tolerance"), [
    ("anim.gif", "GIF", {"duration": 100}, 12.0),  # 256 palette colours
    ("anim.webp", "WEBP", {"lossless": True}, 0.0),
    ("anim.png", "PNG", {}, 0.0),  # APNG
    ("pair.mpo", "MPO", {"quality": 95}, 6.0),  # JPEG frames
])
def test_a_multi_frame_file_gives_its_first_frame(tmp_path, name, fmt, save, tolerance):
    first, second = two_frames(tmp_path / name, fmt, **save)
    with Image.open(tmp_path / name) as check:
        assert getattr(check, "n_frames", 1) == 2
    rgb = np.asarray(load_rgb(str(tmp_path / name)), dtype=int)
    assert np.abs(rgb - first).mean() <= tolerance < np.abs(rgb - second).mean()


@pytest.mark.parametrize(("name", "mode"), [("c.ppm", "RGB"), ("g.pgm", "L"), ("b.pbm", "1"), ("t.tiff", "RGB"),
                                            ("c.bmp", "RGB"), ("c.tga", "RGB"), ("c.qoi", "RGB")])
def test_netpbm_and_other_lossless_formats_decode_exactly(tmp_path, name, mode):
    image = Image.fromarray(picture()).convert(mode)
    image.save(tmp_path / name)
    assert np.array_equal(np.asarray(load_rgb(str(tmp_path / name))), np.asarray(image.convert("RGB")))


def test_heic_decodes_with_pillow_heif(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    upright = picture(64, 48)
    Image.fromarray(upright).save(tmp_path / "phone.heic", quality=95)
    rgb = np.asarray(load_rgb(str(tmp_path / "phone.heic")), dtype=int)
    assert rgb.shape == (48, 64, 3) and np.abs(rgb - upright).mean() < 4


# ------------------------------------------------------------------ folders
def mixed_folder(root: Path) -> dict[str, Path]:
    """Two classes in many formats (one rotated by EXIF, one 16-bit), plus files that are not images."""
    made = {}
    for label, seed in (("a", 0), ("b", 1)):
        folder = root / label
        folder.mkdir(parents=True)
        upright = picture(seed=seed)
        made[f"{label}/jpg"] = save_oriented(folder / "rotated.jpg", upright, 6, quality=95)
        Image.fromarray(upright[..., 0].astype(np.uint16) * 257).save(folder / "deep.png")
        Image.fromarray(upright).save(folder / "plain.ppm")
        Image.fromarray(upright).convert("CMYK").save(folder / "print.tif")
        two_frames(folder / "anim.gif", "GIF")
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / "labels.csv").write_text("x,y")
    (root / "b" / ".DS_Store").write_bytes(b"\0")  # hidden: not even mentioned
    return made


def test_a_folder_of_mixed_formats_lists_what_it_ignores(tmp_path):
    mixed_folder(tmp_path / "train")
    config = DataConfig(dataset="folder", train_dir=str(tmp_path / "train"), image_size=35, crop_pct=0.875,
                        cache_dir=str(tmp_path / "cache"), val_fraction=0.4)
    files = scan_folder(config)
    assert len(files.images) == 10
    assert files.ignored == [str(tmp_path / "train" / "a" / "notes.txt"), str(tmp_path / "train" / "b" / "labels.csv")]
    for cache in ("auto", "off"):
        bundle = build_data(config.__class__(**{**config.__dict__, "cache": cache}))
        assert bundle.ignored == tuple(files.ignored)
        assert "data: ignored 2 files that are not an image (by extension): " in "\n".join(bundle.notes)


def test_the_cache_and_per_item_reading_store_the_upright_scaled_picture(tmp_path):
    made = mixed_folder(tmp_path / "train")
    config = DataConfig(dataset="folder", train_dir=str(tmp_path / "train"), val_dir=str(tmp_path / "train"),
                        image_size=35, crop_pct=0.875, cache_dir=str(tmp_path / "cache"), mean=(0, 0, 0),
                        std=(1, 1, 1))
    cached, per_item = build_data(config), build_data(DataConfig(**{**config.__dict__, "cache": "off"}))
    paths = [path for path, _ in cached.val.samples]
    for name, expected in (("a/jpg", picture(seed=0)), ("a/deep.png", picture(seed=0)[..., 0])):
        row = paths.index(str(made[name]) if name in made else str(tmp_path / "train" / name))
        if expected.ndim == 2:
            expected = np.repeat(expected[..., None], 3, -1)
        want = np.asarray(square(Image.fromarray(expected), SIDE, crop=35))[2:37, 2:37]
        for bundle in (cached, per_item):
            got = (bundle.val[row][0].permute(1, 2, 0).numpy() * 255).round().astype(int)
            assert np.abs(got - want).mean() < 2.5, name


def test_a_truncated_or_oversized_image_is_the_named_file_error(tmp_path, monkeypatch):
    mixed_folder(tmp_path / "train")
    big = tmp_path / "train" / "a" / "big.jpg"
    Image.fromarray(picture()).resize((1600, 1200)).save(big, quality=90)
    data = big.read_bytes()
    config = DataConfig(dataset="folder", train_dir=str(tmp_path / "train"), image_size=35, crop_pct=0.875,
                        cache_dir=str(tmp_path / "cache"), val_fraction=0.4)
    big.write_bytes(data[: len(data) // 2])  # cut short: found only by decoding, drafted or not
    for cache in ("auto", "off"):
        with pytest.raises(BadImagesError, match=f"cannot read 1 image: {big} "):
            build_data(DataConfig(**{**config.__dict__, "cache": cache}))
    big.write_bytes(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # 1600 x 1200 is over it, the rest under
    for cache in ("auto", "off"):
        with pytest.raises(BadImagesError, match="decompression-bomb limit of 1000000"):
            build_data(DataConfig(**{**config.__dict__, "cache": cache}))
    bundle = build_data(DataConfig(**{**config.__dict__, "skip_bad_images": True}))
    assert bundle.skipped == (str(big),)


def test_heic_without_pillow_heif_stops_validate_naming_the_extra(tmp_path, monkeypatch, capsys):
    from tune_app.cli import main

    mixed_folder(tmp_path / "train")
    (tmp_path / "train" / "b" / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic")
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as on an install without the extra
    sets = [f"data.train_dir={tmp_path / 'train'}", "data.val_dir=null", "model.name=timm/test_resnet",
            "model.pretrained=false", f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(["validate", "photos", "--no-build", *[a for s in sets for a in ("--set", s)]]) == 2
    err = capsys.readouterr().err
    assert f"data.train_dir: 1 HEIC/HEIF image (first: {tmp_path / 'train' / 'b' / 'phone.heic'}) need" in err
    assert "pip install 'tune-app[heif]'" in err
