"""The shared preprocess: awkward but valid inputs decode, hostile ones get a one-line reason."""

import struct
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ensemble import preprocess
from ensemble.preprocess import ImageRejected, crop_geometry, model_inputs, open_image
from explain.metadata import read_evidence
from tests.images import encode, exif_rotated_jpeg, photo_like, png_claiming


def test_exif_orientation_is_applied():
    wide = photo_like(300, 200)
    opened = open_image(exif_rotated_jpeg(wide, orientation=6))
    assert opened.size == (200, 300)
    assert opened.mode == "RGB"


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(photo_like().convert("CMYK"), "JPEG"),
        lambda: encode(photo_like().convert("L"), "PNG"),
        lambda: encode(photo_like().convert("1"), "PNG"),
        lambda: encode(photo_like().convert("RGBA"), "PNG"),
        lambda: encode(photo_like().convert("LA"), "PNG"),
        lambda: encode(photo_like().convert("P"), "GIF"),
        lambda: encode(photo_like(), "BMP"),
        lambda: encode(photo_like(), "TIFF"),
        lambda: encode(photo_like(), "WEBP"),
        lambda: encode(photo_like(), "JPEG", progressive=True),
        lambda: encode(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"),
        lambda: encode(photo_like(8000, 60), "JPEG"),
    ],
    ids=["cmyk", "grey", "1bit", "rgba", "la", "palette-gif", "bmp", "tiff", "webp", "progressive", "1x1", "panorama"],
)
def test_awkward_modes_become_rgb(make):
    image = open_image(make())
    assert image.mode == "RGB"
    inputs = model_inputs(image, 64)
    assert inputs.shape == (1, 64, 64, 3) and inputs.dtype == np.float32
    assert np.isfinite(inputs).all()


def test_transparent_palette_is_composited_on_white():
    picture = Image.new("P", (10, 10), 0)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    picture.info["transparency"] = 0
    image = open_image(encode(picture, "PNG", transparency=0))
    assert image.getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    values = np.full((8, 8), 32768, dtype=np.uint16)
    image = open_image(encode(Image.fromarray(values), "PNG"))
    assert image.getpixel((0, 0))[0] in (127, 128)


def test_animated_picture_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert open_image(data).getpixel((8, 8))[0] > 200


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"\x8a\x13random garbage" * 50, "not an image"),
        (b"<html><body>hello</body></html>", "not an image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "not an image"),
        (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "not an image"),
        (png_claiming(40000, 40000), "too many pixels"),
    ],
    ids=["empty", "random", "html", "svg", "pdf", "bomb"],
)
def test_hostile_inputs_get_a_reason(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        open_image(data)


def test_truncated_jpeg_is_refused():
    data = encode(photo_like(400, 300), "JPEG")
    with pytest.raises(ImageRejected, match="truncated"):
        open_image(data[: len(data) // 2])


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.jpg"
    path.write_bytes(encode(photo_like(), "JPEG"))
    with pytest.raises(ImageRejected, match="too large"):
        open_image(path)


def test_missing_file_is_a_reason_not_a_traceback(tmp_path):
    with pytest.raises(ImageRejected, match="cannot read"):
        open_image(tmp_path / "nope.jpg")


def test_centre_crop_keeps_aspect_and_takes_the_middle():
    picture = Image.new("RGB", (300, 100), (0, 0, 0))
    picture.paste((255, 255, 255), (100, 0, 200, 100))  # white middle third
    view = model_inputs(picture, 50, "crop")[0]
    # all white away from the resampling blur at its edges: the crop is exactly the middle square
    assert view[:, 2:-2].min() > 0.99
    assert crop_geometry(300, 100, 50, "crop") == [(1 / 3, 0.0, 2 / 3, 1.0)]


def test_multicrop_covers_the_long_side():
    picture = photo_like(300, 100)
    assert model_inputs(picture, 50, "multicrop").shape == (3, 50, 50, 3)
    boxes = crop_geometry(300, 100, 50, "multicrop")
    assert boxes[0][0] == 0.0 and boxes[-1][2] == 1.0


def test_native_crops_keep_the_pictures_own_pixels():
    picture = photo_like(400, 300)
    views = model_inputs(picture, 100, "native")
    assert views.shape == (3, 100, 100, 3)
    pixels = np.asarray(picture, dtype=np.float32)
    boxes = crop_geometry(400, 300, 100, "native")
    for view, (x0, y0, x1, y1) in zip(views, boxes):
        left, top = round(x0 * 400), round(y0 * 300)
        assert (left + 100, top + 100) == (round(x1 * 400), round(y1 * 300))
        np.testing.assert_array_equal(view, (pixels[top : top + 100, left : left + 100] - 127.0) / 128.0)
    assert boxes[0] == (0.375, 1 / 3, 0.625, 2 / 3)  # the centre first


def test_native_crops_of_a_small_picture_scale_it_up_like_crop():
    picture = photo_like(80, 60)
    np.testing.assert_array_equal(model_inputs(picture, 100, "native"), model_inputs(picture, 100, "crop"))
    assert crop_geometry(80, 60, 100, "native") == crop_geometry(80, 60, 100, "crop")


def test_the_grid_covers_a_telegram_photo_with_4x4_squares_of_its_own_pixels():
    picture = photo_like(1280, 960)
    views = model_inputs(picture, 224, "grid")
    assert views.shape == (16, 224, 224, 3)
    boxes = crop_geometry(1280, 960, 224, "grid")
    pixels = np.asarray(picture, dtype=np.float32)
    for view, (x0, y0, x1, y1) in zip(views, boxes):
        left, top = round(x0 * 1280), round(y0 * 960)
        assert (left + 224, top + 224) == (round(x1 * 1280), round(y1 * 960))
        np.testing.assert_array_equal(view, (pixels[top : top + 224, left : left + 224] - 127.0) / 128.0)
    # edge to edge: the first square at the top left corner, the last at the bottom right, evenly between
    assert boxes[0][:2] == (0.0, 0.0) and boxes[-1][2:] == (1.0, 1.0)
    lefts = sorted({round(box[0] * 1280) for box in boxes})
    assert lefts == [0, 352, 704, 1056]


def test_the_grid_grows_with_the_picture_and_a_small_one_is_scaled_up_first():
    assert len(crop_geometry(640, 480, 224, "grid")) == 3 * 2
    assert len(crop_geometry(300, 250, 224, "grid")) == 1  # the centre square
    assert len(crop_geometry(4000, 3000, 224, "grid")) == 16  # never more than 4x4
    # a strip 100 px high: scaled up to 224 px high (as "crop" would), then squares along its length
    strip = photo_like(1000, 100)
    assert model_inputs(strip, 224, "grid").shape == (4, 224, 224, 3)
    boxes = crop_geometry(1000, 100, 224, "grid")
    assert boxes[0][0] == 0.0 and boxes[-1][2] == 1.0 and all(box[1] == 0.0 and box[3] == 1.0 for box in boxes)


def test_squash_sees_the_whole_picture():
    assert model_inputs(photo_like(300, 100), 50, "squash").shape == (1, 50, 50, 3)
    with pytest.raises(ValueError, match="unknown resize policy"):
        model_inputs(photo_like(), 50, "stretch")


# Regressions found by the hostile corpus and the property tests (tests/ensemble/test_preprocess_fuzz.py).


def tiff_with_a_tag_longer_than_the_file() -> bytes:
    """A valid TIFF whose ImageDescription claims a million bytes: Pillow skips the tag with a UserWarning."""
    data = bytearray(encode(photo_like(16, 12), "TIFF", description="made in the tests"))
    (directory,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, directory)
    for entry in range(directory + 2, directory + 2 + 12 * entries, 12):
        if struct.unpack_from("<H", data, entry)[0] == 270:
            struct.pack_into("<I", data, entry + 4, 1_000_000)
            return bytes(data)
    raise AssertionError("Pillow wrote no ImageDescription tag")


@pytest.mark.parametrize(
    "data",
    [
        tiff_with_a_tag_longer_than_the_file(),
        encode(Image.fromarray(np.array([[np.nan, np.inf, -5.0, 1000.0]], dtype=np.float32), "F"), "TIFF"),
    ],
    ids=["tiff-tag-past-the-end", "float-tiff-with-nan"],
)
def test_pillow_and_numpy_warnings_never_reach_the_caller(data):
    # On the CLI a warning is three lines on stderr; under pytest's warnings-as-errors it was an escape.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        picture = open_image(data)
    assert picture.mode == "RGB"
    assert [str(warning.message) for warning in caught] == []


def test_decoding_in_many_threads_leaves_the_warning_filters_as_they_were():
    # The bot decodes in a thread pool. warnings.catch_warnings() swaps the process-wide filter list on entry
    # and puts its saved copy back on exit; two threads inside it at once put back each other's copies, and
    # "ignore everything" could stay installed for the whole process.
    warns = tiff_with_a_tag_longer_than_the_file()  # Pillow warns while reading it
    # Big enough that decoding, which releases the GIL, keeps a thread inside the block for milliseconds.
    photo = exif_rotated_jpeg(photo_like(1600, 1200))
    before = list(warnings.filters)

    def work(_):
        for _ in range(20):
            open_image(warns)
            open_image(photo)
            read_evidence(photo)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(6)))
    assert warnings.filters == before


def test_a_float_picture_with_nan_is_scaled_by_its_real_values():
    data = encode(Image.fromarray(np.array([[np.nan, 0.0, 100.0, 200.0]], dtype=np.float32), "F"), "TIFF")
    assert [open_image(data).getpixel((x, 0))[0] for x in range(4)] == [0, 0, 100, 200]


def test_sixteen_bit_grey_is_scaled_the_same_across_chunks(monkeypatch):
    values = np.arange(0, 65536, 97, dtype=np.uint16)[:600].reshape(20, 30)
    expected = np.floor(values / 65535 * 255 + 0.5).astype(np.uint8)
    monkeypatch.setattr(preprocess, "_SCALING_CHUNK", 7)  # chunks that end mid-row
    image = open_image(encode(Image.fromarray(values), "PNG"))
    assert np.array_equal(np.asarray(image)[..., 0], expected)


@pytest.mark.parametrize(
    ("claimed", "reason"),
    [
        ((9000, 9000), "too many pixels (9000x9000, limit 64 megapixels)"),
        ((10000, 10000), "too many pixels (10000x10000, limit 64 megapixels)"),  # over Pillow's warning limit
        ((40000, 40000), "too many pixels (limit 64 megapixels)"),  # over Pillow's hard limit: no size to show
    ],
)
def test_a_bomb_is_refused_with_the_limit(claimed, reason):
    with pytest.raises(ImageRejected) as refusal:
        open_image(png_claiming(*claimed))
    assert str(refusal.value) == reason


def test_a_strip_becomes_model_input_in_bounded_memory():
    # Resizing a 60000x1 strip whole to a 260-px short side made a 4-gigapixel (12 GB) intermediate.
    script = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from PIL import Image\n"
        "from ensemble.preprocess import model_inputs\n"
        "print(model_inputs(Image.new('RGB', (60000, 1), (1, 2, 3)), 260).shape)\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 260, 260, 3)"


@pytest.mark.parametrize("size", [64, 260])
@pytest.mark.parametrize("policy", ["crop", "multicrop"])
def test_squares_resized_on_their_own_match_the_whole_picture_resized(monkeypatch, size, policy):
    picture = photo_like(900, 70, seed=4)
    whole = model_inputs(picture, size, policy)
    monkeypatch.setattr(preprocess, "MAX_RESIZED_PIXELS", 0)  # the strip path, for a picture that is not a strip
    alone = model_inputs(picture, size, policy)
    levels = np.abs(whole - alone) * preprocess.PIXEL_STD
    assert levels.max() <= 6 and levels.mean() < 0.5


def test_a_training_view_reads_a_fixed_random_sample_of_its_grid():
    from ensemble.predict_batch import sampled_views

    views = model_inputs(photo_like(1280, 960), 224, "grid")
    chosen = sampled_views(views, 4, seed=7)
    assert chosen.shape == (4, 224, 224, 3)
    assert np.array_equal(chosen, sampled_views(views, 4, seed=7))  # the same squares every run
    picked = [next(i for i, v in enumerate(views) if np.array_equal(v, c)) for c in chosen]
    assert picked == sorted(set(picked))  # distinct, in grid order
    assert sampled_views(views, 0, seed=7) is views and sampled_views(views[:3], 4, seed=7).shape[0] == 3
