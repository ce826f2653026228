"""Keep a process running: `python -m workers.supervise -- rq worker ...`.

rq's worker waits out a Redis outage while it dequeues, but a connection error anywhere
else (a heartbeat, its maintenance, the cron scheduler's tick) ends the process, and a
Procfile runner does not start it again. This restarts the command whenever it exits,
after 1, 2, 4 ... 30 s (back to 1 s once it has stayed up for a minute), until the
supervisor itself is asked to stop: SIGTERM and SIGINT are passed on to the command (rq's
warm shutdown) and the supervisor exits with its exit code. Where a real supervisor runs the
processes (systemd `Restart=always`, supervisord `autorestart=true`, a platform that
restarts dynos), run the command without this.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Callable

MAX_BACKOFF = 30.0
STEADY_AFTER = 60.0  # seconds up after which a crash starts the backoff again at 1 s


def supervise(argv: list[str], *, sleep: Callable[[float], None] = time.sleep,
              log=lambda message: print(message, file=sys.stderr, flush=True)) -> int:
    state = {"stopping": False, "child": None}

    def stop(signum, _frame):
        state["stopping"] = True
        if state["child"] is not None and state["child"].poll() is None:
            state["child"].send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = 1.0
    while True:
        started = time.monotonic()
        state["child"] = subprocess.Popen(argv)
        code = state["child"].wait()
        if code < 0:  # ended by a signal: the shell's 128 + N
            code = 128 - code
        if state["stopping"]:
            return code
        if time.monotonic() - started >= STEADY_AFTER:
            backoff = 1.0
        log(f"supervise: {argv[0]} exited with {code}; starting it again in {backoff:.0f} s")
        sleep(backoff)
        if state["stopping"]:
            return code
        backoff = min(backoff * 2, MAX_BACKOFF)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: python -m workers.supervise -- COMMAND [ARGS...]")
    sys.exit(supervise(args))


if __name__ == "__main__":
    main()
