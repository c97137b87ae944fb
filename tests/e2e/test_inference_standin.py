"""Structured access end to end: a release opens behind an API, a small inference service
(a real HTTP server started here) verifies grantees' keys with the gateway and reports the
use it served, and the release's gate into the first weights tier reads that use until
promotion follows. Everything goes through real processes and sockets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx2
import pytest

from tests.sample import make_folder, make_license
from tests.served import clean_env, serving

pytestmark = pytest.mark.slow
SHIPPED = Path(__file__).parents[2] / "policies" / "default.toml"
MODEL = "acme/llm"
GATE = """[gates.trusted_partner]
min_days_in_stage = 7
min_api_requests = 1000
min_api_users = 5
max_flagged_share = 0.01"""


def gateway(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if ok:
        assert done.returncode == 0, f"gateway {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done


@dataclass
class Inference:
    """A stand-in for a lab's inference service: it answers prompts for callers whose key
    the gateway says is valid, flags prompts its "safety filter" dislikes, and reports
    what it served in batches of `batch` events."""

    gateway_url: str
    service_key: str
    batch: int = 10
    pending: list[dict[str, Any]] = field(default_factory=list)
    reported: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, key: str) -> httpx2.Response:
        return httpx2.post(
            f"{self.gateway_url}/api/v1/keys/verify",
            json={"key": key, "model": MODEL},
            headers={"authorization": f"Bearer {self.service_key}"},
            timeout=10,
        )

    def served(self, key: str, prompt: str, tokens: int) -> None:
        event = {
            "event_id": str(uuid4()),
            "key": key,
            "release": f"{MODEL}:1.0",
            "time": _now(),
            "units": {"requests": 1, "tokens": tokens},
            "flags": {"safety_filter_triggered": "forbidden" in prompt},
        }
        with self.lock:
            self.pending.append(event)
            full = len(self.pending) >= self.batch
        if full:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            events, self.pending = self.pending, []
        if not events:
            return
        answer = httpx2.post(
            f"{self.gateway_url}/api/v1/usage",
            json={"events": events},
            headers={"authorization": f"Bearer {self.service_key}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["refused"] == 0, body
        with self.lock:
            self.reported.append(body)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@contextmanager
def inference_service(inference: Inference) -> Iterator[str]:
    """Serve `inference` on a free loopback port: `POST /v1/complete` with the caller's
    key as a bearer token and `{"prompt": ...}`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            prompt = json.loads(self.rfile.read(length))["prompt"]
            key = self.headers.get("authorization", "").removeprefix("Bearer ").strip()
            verdict = inference.verify(key)
            body = verdict.json()
            if verdict.status_code != 200:
                self._answer(verdict.status_code, {"error": body.get("reason") or body["error"]})
                return
            completion = f"echo: {prompt}"
            inference.served(key, prompt, tokens=len(completion.split()))
            self._answer(
                200, {"completion": completion, "credits_left": body["credits"]["remaining"]}
            )

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_api_use_reported_by_a_service_opens_the_weights(tmp_path: Path) -> None:
    # The shipped policy, with a gate into trusted_partner a test can meet in seconds.
    shipped = SHIPPED.read_text()
    assert GATE in shipped
    policy = tmp_path / "policy.toml"
    policy.write_text(
        shipped.replace(
            GATE,
            GATE.replace("= 7", "= 0")
            .replace("= 1000", "= 40")
            .replace("= 5", "= 4")
            .replace("0.01", "0.05"),
        )
    )
    env = clean_env(
        GATEWAY_HOME=str(tmp_path / "home"),
        GATEWAY_POLICY_FILE=str(policy),
        GATEWAY_SCHEDULER="off",
    )
    folder = make_folder(tmp_path / "llm")
    gateway(env, "db", "upgrade")
    gateway(
        env,
        "release",
        "publish",
        MODEL,
        "1.0",
        str(folder),
        "--license",
        str(make_license(tmp_path)),
    )
    ref = f"{MODEL}:1.0"
    gateway(
        env,
        "evidence",
        "attach",
        ref,
        "--kind",
        "evaluation",
        "--name",
        "internal-safety",
        "--result",
        "pass",
    )
    gateway(env, "stage", "promote", ref, "--to", "api_preview")
    keys = []
    for number in range(4):
        email = f"user{number}@lab{number}.example"
        gateway(env, "accounts", "create", email)
        gateway(
            env, "grants", "create", "--account", email, "--model", MODEL, "--tier", "api_preview"
        )
        keys.append(
            gateway(env, "keys", "create", "--account", email, "--scope", "download").stdout.strip()
        )
    service_key = gateway(env, "services", "create", "inference").stdout.strip()
    refused = gateway(env, "stage", "promote", ref, "--to", "trusted_partner", ok=False)
    assert refused.returncode != 0
    assert "API requests served: 0 of 40" in refused.stdout + refused.stderr

    with serving(env, tmp_path / "serve.log") as base:
        inference = Inference(base, service_key)
        with inference_service(inference) as api:
            # Nothing downloads in an API-only stage.
            manifest = httpx2.post(
                f"{base}/api/v1/models/acme/llm/releases/1.0/downloads",
                headers={"authorization": f"Bearer {keys[0]}"},
            )
            assert (manifest.status_code, manifest.json()["error"]) == (403, "tier_api_only")
            for round_ in range(12):
                for number, key in enumerate(keys):
                    prompt = (
                        "something forbidden" if (round_, number) == (5, 2) else f"hello {round_}"
                    )
                    answer = httpx2.post(
                        f"{api}/v1/complete",
                        json={"prompt": prompt},
                        headers={"authorization": f"Bearer {key}"},
                        timeout=10,
                    )
                    assert answer.status_code == 200, answer.text
            stranger = httpx2.post(
                f"{api}/v1/complete",
                json={"prompt": "hi"},
                headers={"authorization": "Bearer rgk_" + "C" * 28},
                timeout=10,
            )
            assert (stranger.status_code, stranger.json()["error"]) == (403, "key_invalid")
            inference.flush()
    assert sum(batch["accepted"] for batch in inference.reported) == 48

    status = gateway(env, "stage", "status", ref).stdout
    assert "API requests served: 48 of 40" in status
    assert "API users served: 4 of 4" in status
    assert re.search(r"share of API requests flagged: 2\.08% \(1 of 48\)", status), status
    promoted = gateway(env, "stage", "promote", ref, "--to", "trusted_partner")
    assert "api_preview → trusted_partner" in promoted.stdout
