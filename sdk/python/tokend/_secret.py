"""The secret format: <prefix>_<43 base62 characters>_<6-character checksum>.

The checksum (CRC32 of "<prefix>_<random>" in base62) lets a verifier refuse a
mistyped or made-up secret without asking tokend, as the Go SDK does. Nothing
here keeps or prints a secret.
"""

import secrets
import zlib

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62 = {c: i for i, c in enumerate(_ALPHABET)}
_BASE62_CHARS = frozenset(_ALPHABET)
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

RANDOM_LEN = 43
CHECKSUM_LEN = 6
MAX_PREFIX_LEN = 16
MAX_LEN = MAX_PREFIX_LEN + 1 + RANDOM_LEN + 1 + CHECKSUM_LEN
_MIN_LEN = 1 + 1 + RANDOM_LEN + 1 + CHECKSUM_LEN


def check_secret(secret: str) -> bool:
    """Report whether secret is well formed with a correct checksum.

    A False answer means tokend would answer MALFORMED; True says nothing of
    whether a token has this secret.
    """
    if not isinstance(secret, str) or not _MIN_LEN <= len(secret) <= MAX_LEN:
        return False
    sum_at = len(secret) - CHECKSUM_LEN
    rand_at = sum_at - 1 - RANDOM_LEN
    if secret[sum_at - 1] != "_" or secret[rand_at - 1] != "_":
        return False
    prefix = secret[: rand_at - 1]
    if not prefix or not _PREFIX_CHARS.issuperset(prefix):
        return False
    if not _BASE62_CHARS.issuperset(secret[rand_at : sum_at - 1]):
        return False
    want = 0
    for c in secret[sum_at:]:
        v = _BASE62.get(c)
        if v is None:
            return False
        want = want * 62 + v
    return zlib.crc32(secret[: sum_at - 1].encode("ascii")) == want


def mask(secret: str) -> str:
    """Answer the display form of a secret, prefix and last 4 characters."""
    i = secret.rfind("_")
    j = secret.rfind("_", 0, i) if i > 0 else -1
    if j <= 0 or len(secret) < 8:
        return "…"
    return secret[: j + 1] + "…" + secret[-4:]


def _example(prefix: str) -> str:
    """A well-formed secret, checksum and all, that no token has (for tests
    and the benchmark: tokend makes the real ones)."""
    body = prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LEN))
    n = zlib.crc32(body.encode("ascii"))
    tail = ""
    for _ in range(CHECKSUM_LEN):
        tail = _ALPHABET[n % 62] + tail
        n //= 62
    return body + "_" + tail
