"""Every bad or odd image we know of (truncated, huge, lying headers, odd modes): an ImageError, or sensible RGB."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import vis_core
from vis_core import ImageError, load_image
from vis_core.images import MAX_PIXELS, to_rgb


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header claims width x height RGB pixels."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body = png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
    return b"\x89PNG\r\n\x1a\n" + header + body + png_chunk(b"IEND", b"")


def gif_with_huge_frame() -> bytes:
    """A tiny GIF: 10x10 logical screen, but a first frame that claims 30000x30000."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 30000, 30000, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b"\x3b"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return vis_core.sample_image("coffee")


BAD_INPUTS = {
    "empty": b"",
    "html": b"<!DOCTYPE html><html><body>not an image</body></html>",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
    "zip": b"PK\x03\x04" + b"\x00" * 100,
    "pdf named png": b"%PDF-1.7\n1 0 obj<<>>endobj\n",
    "psd": b"8BPS\x00\x01" + b"\x00" * 100,
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n",
    "fits": b"SIMPLE  =                    T" + b" " * 50,
    "random": bytes(range(256)) * 4,
    "text": b"hello world, this is plainly text",
    "png header only": b"\x89PNG\r\n\x1a\n",
    "bomb png 30000x30000": png_claiming(30000, 30000),
    "bomb gif huge frame": gif_with_huge_frame(),
    "zero-size png": png_claiming(0, 0),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_inputs_raise_image_error(name):
    with pytest.raises(ImageError) as info:
        load_image(BAD_INPUTS[name])
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 300


def test_messages_say_what_the_file_is():
    with pytest.raises(ImageError, match="PDF"):
        load_image(BAD_INPUTS["pdf named png"])
    with pytest.raises(ImageError, match="too large"):
        load_image(BAD_INPUTS["bomb png 30000x30000"])
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_tiff_is_refused_before_decoding(photo):
    with pytest.raises(ImageError, match="TIFF"):
        load_image(encode(photo, "TIFF"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_truncated_files_raise(photo, fmt):
    data = encode(photo, fmt)
    with pytest.raises(ImageError, match=r"corrupt|truncated|unreadable"):
        load_image(data[: len(data) // 2])
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_allowed_formats_decode(photo, fmt):
    image = load_image(encode(photo, fmt))
    assert image.mode == "RGB" and image.size == photo.size


def test_path_file_object_and_bytes_agree(photo, tmp_path):
    data = encode(photo, "PNG")
    path = tmp_path / "coffee.png"
    path.write_bytes(data)
    a, b, c = load_image(data), load_image(path), load_image(io.BytesIO(data))
    assert a.tobytes() == b.tobytes() == c.tobytes() == photo.tobytes()
    with pytest.raises(ImageError, match="Cannot read"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError):
        load_image(tmp_path)  # a folder


def test_name_is_ignored_content_decides(photo, tmp_path):
    lying = tmp_path / "photo.gif"
    lying.write_bytes(encode(photo, "JPEG"))
    assert load_image(lying).size == photo.size
    fake = tmp_path / "picture.png"
    fake.write_bytes(BAD_INPUTS["pdf named png"])
    with pytest.raises(ImageError):
        load_image(fake)


def test_file_larger_than_cap(monkeypatch, photo):
    monkeypatch.setattr(vis_core.images, "MAX_BYTES", 1000)
    with pytest.raises(ImageError, match="limit"):
        load_image(encode(photo, "PNG"))


def test_rgba_and_la_composite_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    out = np.asarray(load_image(encode(rgba, "PNG")))
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)
    la = Image.new("LA", (2, 2), (0, 0))
    assert tuple(np.asarray(load_image(encode(la, "PNG")))[0, 0]) == (255, 255, 255)


def test_palette_with_transparency():
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    data = encode(p, "PNG", transparency=0)
    out = np.asarray(load_image(data))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (0, 255, 0)
    gif = np.asarray(load_image(encode(p, "GIF", transparency=0)))
    assert tuple(gif[0, 0]) == (255, 255, 255)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = np.asarray(load_image(encode(cmyk, "JPEG", quality=95))).astype(int)
    assert out[4, 4, 0] > 200 and out[4, 4, 1] < 60 and out[4, 4, 2] < 60


def test_16_bit_is_rescaled_not_clipped():
    ramp = np.linspace(0, 65535, 64 * 4).astype(np.uint16).reshape(4, 64)
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    out = np.asarray(load_image(encode(image, "PNG")))
    assert out.shape == (4, 64, 3)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert 100 < out[2, 0, 0] < 155  # the middle of the ramp is mid-grey, not white
    assert (out == 255).mean() < 0.05


def test_32_bit_and_float_and_bilevel():
    ints = Image.fromarray(np.array([[0, 70000], [140000, 280000]], dtype=np.int32))
    values = np.asarray(to_rgb(ints))[:, :, 0]
    assert values[0, 0] == 0 and values[1, 1] == 255 and 0 < values[0, 1] < values[1, 0] < 255
    floats = Image.fromarray(np.array([[0.0, 0.5], [1.0, np.nan]], dtype=np.float32))
    assert np.asarray(to_rgb(floats))[:, :, 0].tolist() == [[0, 128], [255, 0]]
    bilevel = Image.new("1", (3, 3), 1)
    assert np.asarray(load_image(encode(bilevel, "PNG"))).min() == 255


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(image, "JPEG", exif=exif.tobytes())
    assert load_image(data).size == (20, 40)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_first_frame(fmt):
    frames = [Image.new("RGB", (16, 16), color) for color in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    out = np.asarray(load_image(data)).astype(int)
    assert out[8, 8, 0] > 200 and out[8, 8, 2] < 50


@pytest.mark.parametrize("size", [(1, 1), (3, 10000), (10000, 3)])
def test_extreme_shapes(size):
    image = load_image(encode(Image.new("RGB", size, (10, 200, 30)), "PNG"))
    assert image.size == size and image.mode == "RGB"


def test_pixel_cap_is_well_below_pillow_default():
    assert MAX_PIXELS < Image.MAX_IMAGE_PIXELS / 2


def test_bombs_keep_memory_bounded():
    code = f"""
import resource, vis_core
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for data in ({png_claiming(30000, 30000)!r}, {gif_with_huge_frame()!r}, {png_claiming(6000, 6000)!r}):
    try:
        vis_core.load_image(data)
    except vis_core.ImageError:
        pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    grown_kb = int(result.stdout.strip().splitlines()[-1])
    assert grown_kb < 200_000, f"peak memory grew by {grown_kb} kB"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data):
    try:
        image = load_image(data)
    except ImageError:
        return
    assert image.mode == "RGB" and image.width * image.height <= MAX_PIXELS


_SEEDS = {fmt: encode(Image.new("RGB", (12, 9), (90, 30, 200)), fmt) for fmt in ["PNG", "JPEG", "GIF", "WEBP", "BMP"]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(_SEEDS)),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_real_files_never_crash(fmt, flips, cut):
    data = bytearray(_SEEDS[fmt])
    for position, value in flips:
        data[position % len(data)] = value
    data = bytes(data[: max(1, len(data) - cut % len(data))])
    try:
        image = load_image(data)
    except ImageError:
        return
    assert image.mode == "RGB"


def test_samples_are_real_photos():
    names = vis_core.sample_names()
    assert {"chelsea (cat)", "coffee", "astronaut", "rocket"} <= set(names)
    for name in names:
        image = vis_core.sample_image(name)
        assert image.mode == "RGB" and min(image.size) >= 256
    assert vis_core.sample_image("chelsea") is vis_core.sample_image("chelsea")
    with pytest.raises(ImageError, match="Unknown sample"):
        vis_core.sample_image("dog")
