"""Live on the multilingual base model in the real app: `gemma3-270m` is offered in the local Model picker, and
a Chinese prompt streams Chinese text with its gate chart and the latents' nearest tokens (the fresh gate: the
untrained HRPO starting point).  Needs the pinned Gemma packages (requirements.txt)."""
import json

import pytest

from conftest import components
from studio.hosting import multilingual_base_installed

pytestmark = [pytest.mark.app, pytest.mark.slow]      # the app in a real process, the real 270M model: minutes

gradio_client = pytest.importorskip("gradio_client")
QUESTION = "小明有5个苹果，又买了3个。他现在有几个苹果？"


def test_a_gemma_prompt_streams_in_live(app_url):
    assert multilingual_base_installed()                            # requirements.txt installs it
    choices = [c[1] if isinstance(c, (list, tuple)) else c for c in components(app_url)["model"]["choices"]]
    assert "gemma3-270m" in choices
    client = gradio_client.Client(app_url, verbose=False)
    job = client.submit("gemma3-270m", QUESTION, 48, 0.5, 50, 0, True, True, api_name="/generate")
    updates = list(job)
    html, chart, table, status = job.result()
    assert len(updates) >= 2 and "done:" in status, status          # streamed, and finished
    text = "".join(row[1] for row in table["data"])
    assert "####" in text and any("\u4e00" <= ch <= "\u9fff" for ch in text), text   # answered, in Chinese
    thinking = [row for row in table["data"] if row[2]]
    assert thinking and all(row[-1] and row[4] > 0 for row in thinking)  # nearest tokens, latents mixed in
    assert "gate a (mean over H)" in {t["name"] for t in json.loads(chart["plot"])["data"]}
