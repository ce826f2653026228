"""The rq worker the Procfile runs: rq's forking `Worker`, with the jobs' code imported once,
in the worker process, before any fork.

rq runs each job in a fresh fork of the worker (its work horse). A worker that has not
imported the jobs makes every horse import them again: SQLAlchemy, the models, the
adapters, about 0.4 s of CPU per job, the fork-and-import cost rq's documentation suggests
preloading against. Nothing here opens a connection: engines are made lazily, in the
process that uses them, after the fork.
"""
from __future__ import annotations

from rq import Worker

import workers.jobs  # noqa: F401  (loaded here, inherited by every work horse)
from settlement.runtime import tune_gc_for_bulk_work

tune_gc_for_bulk_work()  # after the imports: they are frozen with the rest


class PreloadedWorker(Worker):
    """`rq.Worker`, from a module that has loaded the jobs (`--worker-class
    workers.worker.PreloadedWorker`)."""
