"""Latency histograms in the load generator's buckets: 0.1 ms up to 1 s, 5 ms up to 60 s."""

from __future__ import annotations

from collections.abc import Mapping

BUCKETS = 21801


def bucket_ms(index: int) -> float:
    """The middle of bucket ``index``, ms."""
    if index < 10000:
        return (index + 0.5) / 10
    if index < BUCKETS - 1:
        return 1000 + (index - 10000 + 0.5) * 5
    return 60000.0


class Histogram:
    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.max = 0.0
        self.n = 0

    def add_sparse(self, counts: Mapping[str, int], max_ms: float) -> None:
        for key, value in counts.items():
            i = int(key)
            self.counts[i] = self.counts.get(i, 0) + value
            self.n += value
        self.max = max(self.max, max_ms)

    def percentile(self, q: float) -> float | None:
        if not self.n:
            return None
        rank = q / 100 * self.n
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return min(bucket_ms(i), self.max)
        return self.max

    def merge(self, other: Histogram) -> Histogram:
        out = Histogram()
        for h in (self, other):
            for i, c in h.counts.items():
                out.counts[i] = out.counts.get(i, 0) + c
            out.n += h.n
            out.max = max(out.max, h.max)
        return out
