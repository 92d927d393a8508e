"""Benchmark: accuracy of the offline understanding on held-out phrasings.

Reads tests/data/intent_eval.yaml (phrasings kept apart from the catalog's examples), runs the
same cascade as ``clinicflow classify`` and prints one JSON line: overall accuracy, accuracy
per intent, urgent recall and look-alike false alarms, and ms per message. ``--sweep`` also
prints the accuracy for a grid of embedding thresholds (how the defaults were chosen).
Usage: python bench/understanding.py [--sweep] [--errors]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import yaml

from clinicflow.engine import Engine
from clinicflow.loader import load_catalog

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "intent_eval.yaml"


def evaluate(engine: Engine, cases: list[dict[str, str]]) -> tuple[dict[str, object], list[str]]:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    errors: list[str] = []
    started = time.perf_counter()
    for case in cases:
        got = engine.classify(case["text"]).intent or "out_of_scope"
        per[case["intent"]]["total"] += 1
        if got == case["intent"]:
            per[case["intent"]]["ok"] += 1
        else:
            errors.append(f"{case['intent']:>17} <- {got:<17} {case['text']}")
    ms = (time.perf_counter() - started) * 1000 / max(len(cases), 1)
    total = sum(c["total"] for c in per.values())
    ok = sum(c["ok"] for c in per.values())
    return {
        "accuracy": round(ok / total, 4),
        "cases": total,
        "per_intent": {k: round(v["ok"] / v["total"], 3) for k, v in sorted(per.items())},
        "ms_per_message": round(ms, 2),
    }, errors


def red_flags(engine: Engine, data: dict[str, list[str]]) -> tuple[dict[str, object], list[str]]:
    misses = [t for t in data.get("urgent", []) if engine.classify(t).intent != "urgent"]
    alarms = [t for t in data.get("not_urgent", []) if engine.classify(t).intent == "urgent"]
    figures = {
        "urgent_recall": round(1 - len(misses) / max(len(data.get("urgent", [])), 1), 4),
        "urgent_cases": len(data.get("urgent", [])),
        "lookalike_false_alarms": len(alarms),
        "lookalike_cases": len(data.get("not_urgent", [])),
    }
    return figures, [f"missed urgent: {t}" for t in misses] + [f"false alarm: {t}" for t in alarms]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--errors", action="store_true")
    parser.add_argument("--file", type=Path, default=EVAL, help="evaluation set (YAML)")
    args = parser.parse_args()
    data = yaml.safe_load(args.file.read_text("utf-8"))
    catalog = load_catalog()
    engine = Engine(catalog, data_dir=tempfile.mkdtemp(prefix="clinicflow-eval-"))
    figures, errors = evaluate(engine, data["cases"])
    flags, flag_errors = red_flags(engine, data.get("red_flags", {}))
    print(json.dumps({"bench": "understanding", "set": args.file.name, **figures, **flags}))
    if args.errors:
        print("\n".join(errors + flag_errors), file=sys.stderr)
    if args.sweep:
        base = catalog.clinic.understanding
        for accept in (0.30, 0.35, 0.40, 0.45, 0.50):
            for margin in (0.55, 0.65, 0.75):
                tuned = replace(base, embedding_accept=accept, embedding_sure=margin)
                engine.understander.thresholds = tuned
                result, _ = evaluate(engine, data["cases"])
                print(
                    json.dumps({"accept": accept, "margin": margin, "accuracy": result["accuracy"]})
                )


if __name__ == "__main__":
    main()
