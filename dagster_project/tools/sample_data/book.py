"""Growable column tables for the generator's state (the policy book, customers).

numpy arrays with spare capacity, so appending a day's rows is amortised O(rows) rather than a
copy of the whole book, and dropping expired rows is one boolean compaction every few days.
"""

from __future__ import annotations

import numpy as np


class ColumnTable:
    def __init__(self, dtypes: dict[str, str], capacity: int = 1024):
        self.dtypes = dtypes
        self.n = 0
        self._cap = max(capacity, 16)
        self._cols = {name: np.zeros(self._cap, dtype=dt) for name, dt in dtypes.items()}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> np.ndarray:
        """A view of the live rows (writes go to the table)."""
        return self._cols[name][: self.n]

    def _grow(self, need: int) -> None:
        cap = self._cap
        while cap < need:
            cap *= 2
        if cap != self._cap:
            for name, arr in self._cols.items():
                new = np.zeros(cap, dtype=arr.dtype)
                new[: self.n] = arr[: self.n]
                self._cols[name] = new
            self._cap = cap

    def append(self, **columns: np.ndarray) -> None:
        k = len(next(iter(columns.values())))
        if set(columns) != set(self._cols):
            raise KeyError(f"append needs exactly the columns {sorted(self._cols)}, got {sorted(columns)}")
        self._grow(self.n + k)
        for name, values in columns.items():
            self._cols[name][self.n: self.n + k] = values
        self.n += k

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where mask is False (order preserved)."""
        k = int(mask.sum())
        for name, arr in self._cols.items():
            arr[:k] = arr[: self.n][mask]
        self.n = k
        # Give memory back when the table shrank a lot.
        if self._cap > 4 * max(self.n, 1024):
            self._cap = max(2 * self.n, 1024)
            self._cols = {name: arr[: self._cap].copy() for name, arr in self._cols.items()}


class GrowArray:
    """One growable array indexed by an integer id (customers: id → branch, complaint state ...)."""

    def __init__(self, dtype: str, fill=0, capacity: int = 1024):
        self.fill = fill
        self.arr = np.full(capacity, fill, dtype=dtype)

    def ensure(self, size: int) -> None:
        if size > len(self.arr):
            cap = len(self.arr)
            while cap < size:
                cap *= 2
            new = np.full(cap, self.fill, dtype=self.arr.dtype)
            new[: len(self.arr)] = self.arr
            self.arr = new
