"""ScanNet's raw RGB-D stream, the ``.sens`` file (ScanNet ``SensorData`` format, version 4), read and written.

Layout, little-endian::

    header   uint32 version (4) | uint64 n + n bytes sensor name
             4 x float32[16] intrinsic_color, extrinsic_color, intrinsic_depth, extrinsic_depth (row-major 4x4)
             int32 colour compression (-1 unknown, 0 raw, 1 png, 2 jpeg)
             int32 depth compression (-1 unknown, 0 raw_ushort, 1 zlib_ushort, 2 occi_ushort)
             uint32 colour width, colour height, depth width, depth height | float32 depth shift | uint64 frames
    frame    float32[16] camera-to-world | uint64 colour timestamp, depth timestamp
             uint64 colour bytes, depth bytes | colour data | depth data

Depth values are uint16 in units of 1 / ``depth_shift`` metres (ScanNet: 1000, millimetres), 0 = no reading;
zlib depth is ``zlib.compress`` of the (H, W) uint16 array. Lost tracking shows as a non-finite pose. IMU data
that may follow the frames is not read.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from univlg.errors import FormatError

SENS_VERSION = 4
COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}
_FRAME_HEAD = struct.Struct("<16f4Q")  # pose, two timestamps, two sizes


@dataclass
class SensHeader:
    """The ``.sens`` header: 4x4 float32 camera matrices, compression names, image sizes, depth shift, frame count."""

    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: str
    depth_compression: str
    color_size: tuple[int, int]  # (width, height)
    depth_size: tuple[int, int]  # (width, height)
    depth_shift: float
    num_frames: int


@dataclass
class SensFrame:
    """One frame: its index in the stream, cam_to_world (4, 4) float32, timestamps, compressed colour and depth."""

    index: int
    cam_to_world: np.ndarray
    timestamp_color: int
    timestamp_depth: int
    color_data: bytes
    depth_data: bytes

    def color(self, header: SensHeader) -> np.ndarray:
        """Decoded colour: (H, W, 3) uint8."""
        width, height = header.color_size
        if header.color_compression == "raw":
            image = np.frombuffer(self.color_data, dtype=np.uint8)
            if image.size != width * height * 3:
                raise FormatError(f"frame {self.index}: raw colour has {image.size} bytes, expected {width}x{height}x3")
            return image.reshape(height, width, 3)
        if header.color_compression not in ("jpeg", "png"):
            raise FormatError(f"frame {self.index}: unsupported colour compression {header.color_compression!r}")
        try:
            with Image.open(io.BytesIO(self.color_data)) as image:
                return np.asarray(image.convert("RGB"))
        except OSError as error:
            raise FormatError(f"frame {self.index}: undecodable {header.color_compression} colour ({error})") from None

    def depth(self, header: SensHeader) -> np.ndarray:
        """Decoded depth: (H, W) uint16 in units of 1 / ``depth_shift`` metres."""
        width, height = header.depth_size
        if header.depth_compression == "zlib_ushort":
            try:
                raw = zlib.decompress(self.depth_data)
            except zlib.error as error:
                raise FormatError(f"frame {self.index}: corrupt zlib depth ({error})") from None
        elif header.depth_compression == "raw_ushort":
            raw = self.depth_data
        else:
            raise FormatError(f"frame {self.index}: unsupported depth compression {header.depth_compression!r}")
        if len(raw) != width * height * 2:
            raise FormatError(f"frame {self.index}: depth has {len(raw)} bytes, expected {width}x{height} uint16")
        return np.frombuffer(raw, dtype="<u2").reshape(height, width)


def _read_exact(handle: BinaryIO, count: int, what: str, path: Path) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise FormatError(f"{path}: truncated file while reading {what} ({len(data)} of {count} bytes)")
    return data


def _read_header(handle: BinaryIO, path: Path) -> SensHeader:
    (version,) = struct.unpack("<I", _read_exact(handle, 4, "the version", path))
    if version != SENS_VERSION:
        raise FormatError(f"{path}: .sens version {version}, expected {SENS_VERSION}")
    (name_length,) = struct.unpack("<Q", _read_exact(handle, 8, "the sensor name length", path))
    if name_length > 4096:
        raise FormatError(f"{path}: implausible sensor name length {name_length}")
    name = _read_exact(handle, name_length, "the sensor name", path).decode("utf-8", errors="replace")
    matrices = np.frombuffer(_read_exact(handle, 4 * 64, "the camera matrices", path), dtype="<f4").reshape(4, 4, 4)
    color_type, depth_type, cw, ch, dw, dh, shift, frames = struct.unpack(
        "<2i4IfQ", _read_exact(handle, 8 + 16 + 4 + 8, "the image description", path)
    )
    if color_type not in COLOR_COMPRESSION or depth_type not in DEPTH_COMPRESSION:
        raise FormatError(f"{path}: unknown compression types (colour {color_type}, depth {depth_type})")
    if min(cw, ch, dw, dh) == 0 or not shift > 0:
        raise FormatError(f"{path}: bad image sizes {cw}x{ch} / {dw}x{dh} or depth shift {shift}")
    return SensHeader(
        sensor_name=name,
        intrinsic_color=matrices[0].copy(),
        extrinsic_color=matrices[1].copy(),
        intrinsic_depth=matrices[2].copy(),
        extrinsic_depth=matrices[3].copy(),
        color_compression=COLOR_COMPRESSION[color_type],
        depth_compression=DEPTH_COMPRESSION[depth_type],
        color_size=(cw, ch),
        depth_size=(dw, dh),
        depth_shift=float(shift),
        num_frames=int(frames),
    )


class SensReader:
    """Streams a ``.sens`` file: ``with SensReader(path) as sens: for frame in sens.frames(skip=20): ...``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: file not found")
        self._handle = self.path.open("rb")
        try:
            self.header = _read_header(self._handle, self.path)
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> SensReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def frames(self, skip: int = 1) -> Iterator[SensFrame]:
        """Frames 0, skip, 2*skip, ... (others are seeked over without reading their data); one pass per reader."""
        if skip < 1:
            raise ValueError(f"skip must be >= 1, got {skip}")
        for index in range(self.header.num_frames):
            head = _read_exact(self._handle, _FRAME_HEAD.size, f"frame {index}", self.path)
            values = _FRAME_HEAD.unpack(head)
            color_bytes, depth_bytes = values[18], values[19]
            if index % skip:
                self._handle.seek(color_bytes + depth_bytes, io.SEEK_CUR)
                continue
            color = _read_exact(self._handle, color_bytes, f"frame {index} colour", self.path)
            depth = _read_exact(self._handle, depth_bytes, f"frame {index} depth", self.path)
            pose = np.asarray(values[:16], dtype=np.float32).reshape(4, 4)
            yield SensFrame(index, pose, values[16], values[17], color, depth)


def encode_color(rgb: np.ndarray, compression: str = "jpeg", quality: int = 95) -> bytes:
    """(H, W, 3) uint8 -> colour bytes for a ``.sens`` frame ("jpeg", "png" or "raw")."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if compression == "raw":
        return rgb.tobytes()
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format={"jpeg": "JPEG", "png": "PNG"}[compression], quality=quality)
    return buffer.getvalue()


def encode_depth(depth: np.ndarray, compression: str = "zlib_ushort") -> bytes:
    """(H, W) uint16 -> depth bytes for a ``.sens`` frame ("zlib_ushort" or "raw_ushort")."""
    raw = np.ascontiguousarray(depth, dtype="<u2").tobytes()
    return zlib.compress(raw) if compression == "zlib_ushort" else raw


def write_sens(path: str | Path, header: SensHeader, frames: list[SensFrame]) -> None:
    """Write a ``.sens`` file; frames carry already-encoded data (:func:`encode_color`, :func:`encode_depth`).

    ``header.num_frames`` is ignored: the number of ``frames`` is written.
    """
    codes = {v: k for k, v in COLOR_COMPRESSION.items()}, {v: k for k, v in DEPTH_COMPRESSION.items()}
    name = header.sensor_name.encode("utf-8")
    with Path(path).open("wb") as handle:
        handle.write(struct.pack("<IQ", SENS_VERSION, len(name)) + name)
        for matrix in (header.intrinsic_color, header.extrinsic_color, header.intrinsic_depth, header.extrinsic_depth):
            handle.write(np.asarray(matrix, dtype="<f4").reshape(16).tobytes())
        handle.write(
            struct.pack(
                "<2i4IfQ",
                codes[0][header.color_compression],
                codes[1][header.depth_compression],
                *header.color_size,
                *header.depth_size,
                header.depth_shift,
                len(frames),
            )
        )
        for frame in frames:
            pose = np.asarray(frame.cam_to_world, dtype="<f4").reshape(16)
            handle.write(_FRAME_HEAD.pack(*pose, frame.timestamp_color, frame.timestamp_depth,
                                          len(frame.color_data), len(frame.depth_data)))  # fmt: skip
            handle.write(frame.color_data)
            handle.write(frame.depth_data)
