"""The pieces of one object over-split at every peak of its distance map,
merged back along their necks: two neighbouring pieces stay apart only
where the neck between them (the saddle of the distance map) is clearly
narrower than both (see :func:`segmentation.instances.split_touching`)."""

from __future__ import annotations

import heapq

import numpy as np

# Pixel offsets whose pairs cover all 8-neighbourhood adjacencies once.
_PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


class Pieces:
    """Over-split pieces of one object and the necks between them, merged
    greedily: the pair with the widest neck relative to the smaller piece
    goes first."""

    def __init__(self, pieces: np.ndarray, dist: np.ndarray, peak: np.ndarray) -> None:
        n = peak.size - 1
        self.pieces = pieces
        self.parent = np.arange(n + 1)
        self.peak = peak.tolist()
        self.area = np.bincount(pieces.ravel(), minlength=n + 1).tolist()
        self.area[0] = 0
        a, b, saddle = _adjacency(pieces, dist)
        self.edges = list(zip(a.tolist(), b.tolist(), saddle.tolist()))
        self.neighbours: list[dict[int, float]] = [{} for _ in range(n + 1)]
        for i, j, s in self.edges:
            self.neighbours[i][j] = s
            self.neighbours[j][i] = s
        self.count = n

    def ratio(self, i: int, j: int, saddle: float) -> float:
        return saddle / max(min(self.peak[i], self.peak[j]), 1e-6)

    def merge(self, i: int, j: int) -> int:
        neighbours = self.neighbours
        # Keep the piece with more neighbours as the survivor (cheaper update).
        if len(neighbours[i]) < len(neighbours[j]):
            i, j = j, i
        self.parent[j] = i
        self.peak[i] = max(self.peak[i], self.peak[j])
        self.area[i] += self.area[j]
        neighbours[i].pop(j, None)
        for k, s in neighbours[j].items():
            if k == i:
                continue
            del neighbours[k][j]
            best = max(neighbours[i].get(k, 0.0), s)
            neighbours[i][k] = best
            neighbours[k][i] = best
        neighbours[j] = {}
        self.count -= 1
        return i

    def merge_necks(self, neck_ratio: float) -> None:
        heap = [(-self.ratio(i, j, s), i, j) for i, j, s in self.edges]
        heapq.heapify(heap)
        parent, neighbours = self.parent, self.neighbours
        while heap:
            neg, i, j = heapq.heappop(heap)
            if -neg < neck_ratio:
                break
            if parent[i] != i or parent[j] != j or j not in neighbours[i]:
                continue
            if self.ratio(i, j, neighbours[i][j]) != -neg:
                continue  # stale entry: a piece grew since it was queued
            k = self.merge(i, j)
            for m, s in neighbours[k].items():
                heapq.heappush(heap, (-self.ratio(k, m, s), k, m))

    def alive(self) -> list[int]:
        return [i for i in range(1, len(self.area)) if self.parent[i] == i]

    def areas(self) -> list[int]:
        return [self.area[i] for i in self.alive()]

    def fold_fragments(self, limit: float) -> None:
        """Merge pieces smaller than ``limit`` pixels into the neighbour they
        share the widest neck with."""
        for i in sorted(self.alive(), key=lambda p: self.area[p]):
            if self.parent[i] != i or self.area[i] >= limit or not self.neighbours[i]:
                continue
            self.merge(i, max(self.neighbours[i], key=self.neighbours[i].get))

    def labels(self) -> np.ndarray:
        """The pieces relabelled to the merged pieces they belong to."""
        parent = self.parent
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        return parent[self.pieces]


def _adjacency(pieces: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of touching pieces (a < b) and the height of the saddle between
    them: the largest distance value along their common boundary."""
    keys, values = [], []
    n = int(pieces.max()) + 1
    h, w = pieces.shape
    for dy, dx in _PAIR_SHIFTS:
        x0, x1 = max(0, -dx), w - max(0, dx)
        p = pieces[0:h - dy, x0:x1]
        q = pieces[dy:h, x0 + dx:x1 + dx]
        sel = (p != q) & (p > 0) & (q > 0)
        if not sel.any():
            continue
        pa, qa = p[sel].astype(np.int64), q[sel].astype(np.int64)
        s = np.minimum(dist[0:h - dy, x0:x1][sel], dist[dy:h, x0 + dx:x1 + dx][sel])
        keys.append(np.minimum(pa, qa) * n + np.maximum(pa, qa))
        values.append(s)
    if not keys:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    key = np.concatenate(keys)
    value = np.concatenate(values).astype(float)
    unique, inverse = np.unique(key, return_inverse=True)
    saddle = np.full(unique.size, -np.inf)
    np.maximum.at(saddle, inverse, value)
    return unique // n, unique % n, saddle
