"""Progress and output for long work: a step logger that the CLI can silence (``--quiet``)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Progress:
    """Reports steps of long work to stderr. ``enabled=False`` makes it silent."""

    enabled: bool = True
    stream: object = field(default_factory=lambda: sys.stderr)

    def info(self, message: str) -> None:
        if self.enabled:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def step(self, message: str):
        """``with progress.step("tracing"):`` prints the step, then its duration."""
        start = time.perf_counter()
        if self.enabled:
            print(f"{message}...", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if self.enabled:
                print(" failed", file=self.stream, flush=True)
            raise
        if self.enabled:
            print(f" done ({time.perf_counter() - start:.1f}s)", file=self.stream, flush=True)

    def iterate(self, items, label: str):
        """Iterate with a click progress bar on stderr (or silently)."""
        items = list(items)
        if not self.enabled or not items:
            yield from items
            return
        import click

        with click.progressbar(items, label=label, file=self.stream, show_pos=True) as bar:
            yield from bar


QUIET = Progress(enabled=False)
