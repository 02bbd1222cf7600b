"""Face match: safe decoding of an upload, one-face detection, encoding and comparison.

No flask here. Errors are ``cases.errors`` classes with stable codes:
``image_invalid`` (not an image / truncated), ``image_too_large`` (pixel count over
``face_max_pixels``, checked from the header before decoding), ``image_alpha`` (PNG with a
transparent pixel), ``face_not_found``, ``face_multiple``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps

from cases.errors import InvalidInput, PayloadTooLarge

__all__ = ["FaceResult", "decode_image", "declared_size", "detect_faces", "encode_single_face", "face_distance", "compare"]


@dataclass(frozen=True)
class FaceResult:
    encoding: np.ndarray
    faces: int
    width: int
    height: int


def declared_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the image's header declares them; nothing is decoded."""
    if not data:
        raise InvalidInput("image_invalid", "图片为空")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the caller judges the size
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Image.DecompressionBombError:
        raise PayloadTooLarge("image_too_large", "图片像素过大") from None
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError):
        raise InvalidInput("image_invalid", "无法识别的图片或图片已损坏") from None


def decode_image(data: bytes, *, max_pixels: int, max_side: int) -> np.ndarray:
    """Decode ``data`` into an RGB array whose longest side is at most ``max_side``."""
    if not data:
        raise InvalidInput("image_invalid", "图片为空")
    # face_recognition sets this to True when imported; a truncated upload must be refused instead.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            w, h = img.size  # header only, nothing decoded yet
            if w * h > max_pixels:
                raise PayloadTooLarge("image_too_large", "图片像素过大")
            if img.format not in ("JPEG", "PNG", "WEBP"):
                raise InvalidInput("image_invalid", "不支持的图片格式")
            if img.format == "JPEG":
                img.draft("RGB", (max_side, max_side))  # DCT-domain downscale: fast for 12 MP
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                if rgba.getchannel("A").getextrema()[0] < 255:  # type: ignore[operator]  # one band: (min, max) ints
                    raise InvalidInput("image_alpha", "图片含透明区域，请上传普通照片")
                img = rgba
            img = img.convert("RGB")  # grayscale and palette images are converted
            img.thumbnail((max_side, max_side))
            return np.asarray(img)
    except (PayloadTooLarge, InvalidInput):
        raise
    except Image.DecompressionBombError:
        raise PayloadTooLarge("image_too_large", "图片像素过大") from None
    except Image.DecompressionBombWarning:
        raise PayloadTooLarge("image_too_large", "图片像素过大") from None
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError):
        raise InvalidInput("image_invalid", "无法识别的图片或图片已损坏") from None


def detect_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """HOG face boxes. First at the image's own scale (finds faces of 80 px and more: a selfie's face
    at the detection size is several times that), then, only if nothing was found, once more with one
    2x upsampling (faces down to ~40 px), which costs about three times as much."""
    import face_recognition

    return (face_recognition.face_locations(rgb, number_of_times_to_upsample=0, model="hog")
            or face_recognition.face_locations(rgb, number_of_times_to_upsample=1, model="hog"))


def encode_single_face(data: bytes, *, max_pixels: int, max_side: int) -> FaceResult:
    import face_recognition

    rgb = decode_image(data, max_pixels=max_pixels, max_side=max_side)
    boxes = detect_faces(rgb)
    if not boxes:
        raise InvalidInput("face_not_found", "照片中未检测到人脸", details={"faces": 0})
    if len(boxes) > 1:
        raise InvalidInput("face_multiple", "照片中有多张人脸，请只拍本人", details={"faces": len(boxes)})
    enc = face_recognition.face_encodings(rgb, known_face_locations=boxes)[0]
    return FaceResult(encoding=enc, faces=1, width=rgb.shape[1], height=rgb.shape[0])


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)))


def compare(a: np.ndarray, b: np.ndarray, threshold: float) -> tuple[bool, float]:
    d = face_distance(a, b)
    return d <= threshold, d


def decide(distance: float, threshold: float, retake_threshold: float | None = None) -> str:
    """``match`` (distance <= threshold), ``retake`` (up to retake_threshold: too close to call,
    take the photos again) or ``mismatch``."""
    if distance <= threshold:
        return "match"
    if retake_threshold is not None and distance <= retake_threshold:
        return "retake"
    return "mismatch"
