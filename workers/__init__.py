"""Background jobs. Thin: they load ids and call settlement/.

With SETTLE_REDIS_URL set, jobs go to rq queues and run on `rq worker` processes; without
it they run in-process, right away (the embedded default). The database, never Redis, is
the record of what happened: a job carries ids, and running it twice changes nothing.
"""

# `rq worker --worker-class` for every worker we start (workers/worker.py says why).
WORKER_CLASS = "workers.worker.PreloadedWorker"
