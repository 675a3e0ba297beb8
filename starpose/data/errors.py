"""Errors raised on bad data: each names the file and the problem."""
from __future__ import annotations


class DataError(ValueError):
    """A data set file (image, annotation json, detections) that cannot be used as it is."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
