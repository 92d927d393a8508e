"""Benchmark: many conversations through the engine, local understanding, real data dir.

Prints one JSON line: turns/s, p50/p99 ms per turn, bytes stored per turn, RSS. The data dir
is prepared (index built, intent model trained) in a child process first.
Usage: python bench/turns.py [--conversations 200] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import load_catalog

# A realistic mix: ad openers, names, questions, choices, colloquial answers, hand-offs.
DIALOGUES = [
    ["Olá! Vi o anúncio do DIU no Instagram", "sou a Ana", "1", "dói pra colocar?", "quero marcar"],
    ["oi", "2", "Mariana", "qual o valor da consulta?", "aceita unimed?", "obg"],
    [
        "boa noite, queria saber sobre menopausa",
        "Carla Souza",
        "tenho mt calor a noite",
        "3",
        "de manhã",
    ],
    [
        "oii vcs atendem sop?",
        "Bia",
        "minha menstruacao é irregular",
        "quanto custa",
        "quero agendar",
    ],
    [
        "Olá, vi o anúncio do emagrecimento",
        "Paula",
        "onde fica a clinica?",
        "tem estacionamento?",
        "tchau",
    ],
    [
        "quero saber da ninfoplastia",
        "me chamo Julia",
        "quanto tempo de recuperação?",
        "ok",
        "falar com atendente",
    ],
    ["bom dia", "consulta ginecologica", "sou a Rita, prefiro a tarde", "sim", "👍", "obrigada"],
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=280)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    data = Path(args.data or tempfile.mkdtemp(prefix="clinicflow-bench-"))
    clock = ManualClock()
    # Build the index and train the intent model in a child process, so the figures (RSS
    # included) are those of an engine starting on a ready data dir, as a runner restarts.
    prepare = "from clinicflow.engine import Engine; Engine.from_catalog(None, data_dir={!r})"
    subprocess.run([sys.executable, "-c", prepare.format(str(data))], check=True)
    engine = Engine(load_catalog(), data_dir=data, clock=clock)
    engine.handle("warmup@c.us", "oi")  # load the embedder once, outside the figures
    start_bytes = engine.store.size_bytes()
    timings: list[float] = []
    began = time.perf_counter()
    for n in range(args.conversations):
        chat = f"55119{n:08d}@c.us"
        for text in DIALOGUES[n % len(DIALOGUES)]:
            t0 = time.perf_counter()
            engine.handle(chat, text)
            timings.append((time.perf_counter() - t0) * 1000)
            clock.advance(20)
    elapsed = time.perf_counter() - began
    engine.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = engine.store.size_bytes() - start_bytes
    timings.sort()
    print(
        json.dumps(
            {
                "bench": "turns",
                "conversations": args.conversations,
                "turns": len(timings),
                "turns_per_s": round(len(timings) / elapsed, 1),
                "p50_ms": round(statistics.median(timings), 2),
                "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
                "bytes_per_turn": round(stored / len(timings)),
                "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
