"""Load: 16 concurrent generation requests through gradio_client against the running app on
loopback, while a training job runs beside them.  Bounded in count (16) and time (each wait)."""
import os
import shutil
import time
from pathlib import Path

import psutil
import pytest

from conftest import LIVE

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process: minutes

gradio_client = pytest.importorskip("gradio_client")


def app_rss_mb(url: str) -> float:
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return psutil.Process(conn.pid).memory_info().rss / 2**20
    raise AssertionError("app process not found")


RUN = Path(os.environ["HRPO_RUNS"]) / "loadtest"      # the app's runs directory is the tests' (conftest)


def train_log() -> str:
    log = RUN / "train.log"
    return log.read_text(errors="replace")[-3000:] if log.is_file() else "(no train.log)"


def test_sixteen_concurrent_generations_beside_training(app_url):  # noqa: F811
    client = gradio_client.Client(app_url, verbose=False)
    client.predict("tiny-random", "arith", "hrpo", 400, 2, 1, 1e-3, 6, "loadtest", api_name="/train_start")
    try:
        expected = client.predict(*LIVE, api_name="/generate")          # warm-up and the reference answer
        rss_before = app_rss_mb(app_url)
        jobs = [client.submit(*LIVE, api_name="/generate") for _ in range(16)]
        results = [job.result(timeout=300) for job in jobs]
        assert len(results) == 16
        for html, _, table, status in results:                         # greedy: every trace is the same
            assert "done: 12 tokens" in status and len(table["data"]) == 12
            assert html == expected[0] and table["data"] == expected[2]["data"]
        assert app_rss_mb(app_url) - rss_before < 600                  # memory stays bounded
        status = client.predict(api_name="/train_status")[0]
        assert "running" in status, (status, train_log())               # the job was not disturbed
        step = int(status.split("step ")[1].split("/")[0])
        deadline = time.time() + 120
        while time.time() < deadline:
            now = int(client.predict(api_name="/train_status")[0].split("step ")[1].split("/")[0])
            if now > step:
                break
            time.sleep(1)
        assert now > step, train_log()                                 # and it keeps making progress
    finally:
        client.predict(api_name="/train_stop")
        deadline = time.time() + 120
        while time.time() < deadline and "running" in client.predict(api_name="/train_status")[0]:
            time.sleep(1)
        shutil.rmtree(RUN, ignore_errors=True)
