"""Which H.264 packets hold a picture no other picture refers to (nal_ref_idc 0).

Such a picture can be left undecoded when it is not wanted: the frames decoded around it come
out bit for bit as they would with it (H.264 numbers frames by reference pictures only, so
dropping one leaves no gap). x264's defaults make about half of a clip's frames so (the B-frames
outside the pyramid); a clip without B-frames has none.

The packets are read as MP4/MKV carry them (each NAL unit behind a length of the size the
stream's avcC record gives) or as Annex B (start codes) where the stream has no avcC record.
Anything unexpected reads as "referred to", so at worst a packet is decoded needlessly.
"""

from __future__ import annotations

from typing import Any

_SLICES = frozenset({1, 2, 3, 4, 5})  # coded slice, data partitions A-C, IDR slice
_LAYERED = frozenset({14, 15, 20})  # SVC/MVC units: their references are not read here


def length_size(stream: Any) -> int | None:
    """The byte size of each NAL unit's length in `stream`'s packets; None for Annex B."""
    extradata = bytes(stream.codec_context.extradata or b"")
    if len(extradata) >= 7 and extradata[0] == 1:  # avcC configurationVersion 1
        return (extradata[4] & 3) + 1
    return None


def is_unreferenced(data: bytes, size: int | None) -> bool:
    """True when every slice in the packet `data` has nal_ref_idc 0 (and it has slices)."""
    headers = _headers_with_lengths(data, size) if size else _headers_after_start_codes(data)
    if headers is None:
        return False
    slices = [h for h in headers if h & 0x1F in _SLICES]
    if not slices or any(h & 0x1F in _LAYERED for h in headers):
        return False
    return all(h & 0x60 == 0 for h in slices)


def _headers_with_lengths(data: bytes, size: int) -> list[int] | None:
    headers: list[int] = []
    at = 0
    while at < len(data):
        length = int.from_bytes(data[at : at + size], "big")
        if length == 0 or at + size + length > len(data):
            return None  # not the framing the avcC record promised
        headers.append(data[at + size])
        at += size + length
    return headers


def _headers_after_start_codes(data: bytes) -> list[int]:
    headers: list[int] = []
    at = data.find(b"\x00\x00\x01")
    while at >= 0 and at + 3 < len(data):
        headers.append(data[at + 3])
        at = data.find(b"\x00\x00\x01", at + 3)
    return headers
