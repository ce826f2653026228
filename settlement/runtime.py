"""Process settings for the long-lived processes that handle bulk work (rq workers, the web
workers, the payout sandboxes)."""
from __future__ import annotations

import gc

# CPython's cyclic collector runs a young collection per 700 new container objects, and
# promotes survivors into older generations that it walks again and again. A payout batch
# or a report keeps tens of thousands of objects alive at once (lines, rows, cells), all
# survivors: with the default thresholds half the CPU of writing a 50,000-line check file
# went to the collector (1.65 s -> 0.75 s with the thresholds below, same file; 0.67 s with
# no collector at all). Reference counting frees nearly everything; cycles are still
# collected, less often.
BULK_GC_THRESHOLDS = (10_000, 20, 20)


def tune_gc_for_bulk_work() -> None:
    """Fewer collector passes, and everything loaded so far (modules, classes) frozen out of
    them: never scanned again, and in a process that forks (rq's work horses) left on pages
    the children share."""
    gc.set_threshold(*BULK_GC_THRESHOLDS)
    gc.freeze()
