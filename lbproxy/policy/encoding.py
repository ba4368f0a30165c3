# -*- test-case-name: tests.test_compress -*-
"""
Which content coding a response gets (RFC 9110 section 12.5.3,
C{Accept-Encoding} with q-values) and whether its type is worth
compressing.  Pure.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

__all__ = ["choose_coding", "TypeMatcher"]


def _weights(values: Iterable[bytes]) -> Dict[bytes, float]:
    weights: Dict[bytes, float] = {}
    for value in values:
        for member in value.split(b","):
            parts = member.strip().split(b";")
            coding = parts[0].strip().lower()
            if not coding:
                continue
            q = 1.0
            for param in parts[1:]:
                name, _, arg = param.strip().partition(b"=")
                if name.strip().lower() == b"q":
                    try:
                        q = float(arg.strip())
                    except ValueError:
                        q = 0.0
                    if not 0.0 <= q <= 1.0:
                        q = 0.0
            if coding == b"x-gzip":
                coding = b"gzip"
            if coding not in weights:
                weights[coding] = q
    return weights


def choose_coding(values: Optional[List[bytes]], offered: Sequence[bytes]) -> Optional[bytes]:
    """
    The coding to send: the acceptable one of C{offered} (server preference
    order) with the highest q-value; C{*} covers codings not named;
    C{q=0} refuses.  L{None}: send the body as it is (also when the client
    sent no C{Accept-Encoding}: compression is then never assumed).
    """
    if not values:
        return None
    weights = _weights(values)
    star = weights.get(b"*")
    best = None
    bestQ = 0.0
    for coding in offered:
        q = weights.get(coding, star if star is not None else 0.0)
        if q > bestQ:
            best, bestQ = coding, q
    return best


class TypeMatcher:
    """
    Media types to compress: exact (C{"application/json"}) or a whole top
    level type (C{"text/*"}).
    """

    def __init__(self, types: Iterable[str]) -> None:
        exact = set()
        prefixes = []
        for media in types:
            if media.endswith("/*"):
                prefixes.append(media[:-1].encode("ascii"))
            else:
                exact.add(media.encode("ascii"))
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    def __call__(self, contentType: Optional[bytes]) -> bool:
        if not contentType:
            return False
        media = contentType.split(b";", 1)[0].strip().lower()
        return media in self._exact or (bool(self._prefixes) and media.startswith(self._prefixes))
