"""A waiting conversation's place in line as one int (`conv_key`), and the shared list of
bucket tops agents compare (`Tops`, read through a `Pick`).

A conversation's heap item is one int that orders as the tuple (rank, front, enqueued_at,
arrival, token) would: heap sifts and the comparison of bucket tops compare two ints
instead of two tuples (and a float in each), and an int is nothing the cyclic collector
tracks. Its low bits are the token, unique over the process; the router's `waiting` dict
maps the token of every live item to its conversation (see `routing.bucket`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# conversation heap item: an int, see conv_key; the top of an empty bucket orders after
# every real item
ConvItem = int
EMPTY: ConvItem = 1 << 400
# the best live item of every bucket, at the bucket's slot; slot 0 stays EMPTY
Tops = list[ConvItem]
# an agent's buckets on one channel, as itemgetter(0, *their slots): their tops in one
# C call, as an agent about to pull compares the tops of all its buckets (cheaper than
# reading each bucket's top; bench/README.md). Slot 0 is in every pick so that it always
# returns a tuple, even for one bucket.
Pick = Callable[[Tops], tuple[ConvItem, ...]]
TOKEN_BITS = 48
TOKEN_MASK = (1 << TOKEN_BITS) - 1
SIGN_BITS = 0x7FFF_FFFF_FFFF_FFFF  # flips a negative float's bits into key order
pack_double = struct.Struct("<d").pack
unpack_int64 = struct.Struct("<q").unpack


def conv_key(rank: int, front: int, enqueued_at: float, arrival: int, token: int) -> ConvItem:
    """One int ordered as (rank, front, enqueued_at, arrival, token): from the high bits,
    rank and front, enqueued_at's IEEE bits made monotonic (64), arrival (64), token (48)."""
    bits: int = unpack_int64(pack_double(enqueued_at + 0.0))[0]  # -0.0 sorts as 0.0
    if bits < 0:
        bits ^= SIGN_BITS  # negative floats: larger magnitude, smaller key
    return ((((rank << 1 | front) << 64 | bits + (1 << 63)) << 64 | arrival) << 48) | token
