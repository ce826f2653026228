"""The slow-body attack of issue 11, against a real gunicorn (as the Procfile runs it): a
client that trickles its webhook body, or sends part of it and then nothing, is cut off
with 408 at the read deadline, and the worker's threads serve /v1/health meanwhile. Every
wait is bounded by socket timeouts, so a regression fails the test instead of hanging it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from settlement.migrate import upgrade

ROOT = Path(__file__).parents[2]
READ_TIMEOUT = 1.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('slow') / 'settle.sqlite3'}"
    upgrade(url)
    port = _free_port()
    env = {**os.environ, "SETTLE_DATABASE_URL": url, "SETTLE_REDIS_URL": "",
           "SETTLE_WEBHOOK_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)}
    env.pop("SETTLE_REDIS_URL")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
         "--timeout", "60", "--bind", f"127.0.0.1:{port}", "api:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to 30 s to start
            try:
                urllib.request.urlopen(base + "/v1/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _open(port: int, length: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn.sendall((f"POST /v1/webhooks/paypal HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
                  ).encode())
    return conn


def _status(conn: socket.socket) -> int:
    head = conn.recv(64)
    return int(head.split(b" ", 2)[1])


def test_a_client_that_stops_sending_its_body_is_cut_off_with_408(server):
    conn = _open(server, 1000)
    conn.sendall(b"{")
    with conn:
        assert _status(conn) == 408


def test_a_trickled_body_is_cut_off_with_408_and_health_answers_meanwhile(server):
    conns = [_open(server, 1000) for _ in range(8)]  # the 8 connections
    stop = threading.Event()

    def trickle(conn):
        for _ in range(600):  # at most a minute of bytes, then the test fails below
            if stop.wait(0.1):
                return
            try:
                conn.sendall(b" ")
            except OSError:
                return

    threads = [threading.Thread(target=trickle, args=(c,), daemon=True) for c in conns]
    for thread in threads:
        thread.start()
    try:
        health = urllib.request.urlopen(f"http://127.0.0.1:{server}/v1/health", timeout=30)
        assert health.status == 200
        assert [_status(c) for c in conns] == [408] * 8
    finally:
        stop.set()
        for conn in conns:
            conn.close()
