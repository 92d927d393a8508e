"""Benchmark: many conversations through the engine, local understanding, real data dir.

Prints one JSON line: turns/s, p50/p99 ms per turn, bytes stored per turn, RSS; the p50 of a
7-node LangGraph graph with SqliteSaver run in the same process afterwards (``graph7_p50_ms``)
and the turn's p50 over it; CPU per turn of the whole process and its ratio to the turn
thread's own CPU (other threads: BLAS helpers, LanceDB pools, LangGraph's executor). The data
dir is prepared (index built, intent model trained) in a child process first.
Usage: python bench/turns.py [--conversations 200] [--data DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
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


def reference_graph_p50_ms(data: Path, invokes: int = 1000) -> float:
    """p50 of one invoke of a 7-node LangGraph graph with SqliteSaver (WAL, synchronous=NORMAL,
    exit durability) on 100 threads: the framework's own cost, to compare a turn with."""
    import sqlite3
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        n: int
        state: str
        slots: dict[str, int]

    def node(name: str) -> object:
        def step(s: State) -> State:
            return {"n": s.get("n", 0) + 1, "state": name, "slots": {**s.get("slots", {}), name: 1}}

        return step

    names = ["load", "guards", "understand", "safety", "advance", "respond", "persist"]
    graph: object = StateGraph(State)
    for name in names:
        graph.add_node(name, node(name))  # type: ignore[attr-defined]
    graph.add_edge(START, names[0])  # type: ignore[attr-defined]
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)  # type: ignore[attr-defined]
    graph.add_edge(names[-1], END)  # type: ignore[attr-defined]
    conn = sqlite3.connect(str(data / "reference.db"), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    app = graph.compile(checkpointer=SqliteSaver(conn))  # type: ignore[attr-defined]
    timings = []
    for i in range(invokes + 50):
        t0 = time.perf_counter()
        app.invoke({}, {"configurable": {"thread_id": f"t{i % 100}"}}, durability="exit")
        if i >= 50:
            timings.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return statistics.median(timings)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    process_cpu, thread_cpu = _cpu(), time.thread_time()
    for n in range(args.conversations):
        chat = f"55119{n:08d}@c.us"
        for text in DIALOGUES[n % len(DIALOGUES)]:
            t0 = time.perf_counter()
            engine.handle(chat, text)
            timings.append((time.perf_counter() - t0) * 1000)
            clock.advance(20)
    elapsed = time.perf_counter() - began
    process_cpu, thread_cpu = _cpu() - process_cpu, time.thread_time() - thread_cpu
    reference = reference_graph_p50_ms(data)
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
                "graph7_p50_ms": round(reference, 2),
                "p50_to_graph7": round(statistics.median(timings) / reference, 2),
                "cpu_ms_per_turn": round(process_cpu / len(timings) * 1000, 2),
                "process_to_thread_cpu": round(process_cpu / thread_cpu, 2),
                "load_1m": round(os.getloadavg()[0], 1),
                "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
