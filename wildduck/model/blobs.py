"""Blob store statistics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BlobStats:
    count: int
    #: bytes as stored (after compression)
    stored_bytes: int
    #: bytes before compression
    raw_bytes: int
    #: blobs whose reference count is zero (waiting for the collector)
    unreferenced: int
