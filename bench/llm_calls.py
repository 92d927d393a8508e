"""LLM calls per turn on the conversation tests, with a key configured, against FakeGemini.

Runs ``clinicflow simulate tests/conversations --stats --llm gemini`` with ``GEMINI_API_KEY``
and ``CLINICFLOW_GEMINI_BASE_URL`` pointing at a local FakeGemini whose default answer is a
valid understanding (``out_of_scope``), then counts the requests the fake received by purpose
(understanding, grounded answer, hand-off summary)::

    python bench/llm_calls.py                 # the default command above
    python bench/llm_calls.py PATHS... --json # any other simulate arguments
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

from clinicflow.testing import FakeGemini

ROOT = Path(__file__).resolve().parent.parent
OUT_OF_SCOPE = {
    "intent": "out_of_scope",
    "confidence": 0.9,
    "urgent": False,
    "urgent_symptoms": [],
    "medical_advice": False,
    "wants_human": False,
    "complaint": False,
}
PURPOSES = (("Você classifica", "understand"), ("Responda à pergunta", "answer"))


def main() -> int:
    args = sys.argv[1:] or ["tests/conversations", "--stats", "--llm", "gemini"]
    with FakeGemini.running(default_reply=OUT_OF_SCOPE) as fake:
        fake.on(r"Responda à pergunta", {"answer": "", "grounded": False})
        fake.on(r"resumo de 2 a 3 linhas", {"summary": "Paciente quer falar com a secretária."})
        env = dict(
            os.environ, GEMINI_API_KEY=str(fake.api_key), CLINICFLOW_GEMINI_BASE_URL=fake.url
        )
        clinicflow = Path(sys.executable).with_name("clinicflow")
        proc = subprocess.run(
            [str(clinicflow), "simulate", *args], env=env, cwd=ROOT, capture_output=True, text=True
        )
        by_purpose: collections.Counter[str] = collections.Counter()
        for request in fake.requests:
            purpose = next((p for mark, p in PURPOSES if mark in request.prompt), "summary")
            by_purpose[purpose] += 1
    sys.stdout.write(proc.stdout)
    print(f"requests to the fake by purpose: {dict(by_purpose)} (total {sum(by_purpose.values())})")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
