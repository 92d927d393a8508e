"""Benchmark: how well the offline understanding reads patients, on labelled sets.

For each set (YAML ``cases: [{text, intent, category?, lookalike?}]``) it prints one JSON line:
intent accuracy and per-intent precision/recall through ``Engine.classify`` (the path of
``clinicflow classify``); urgent recall and look-alike false alarms both through ``classify``
and through the engine — each emergency and look-alike sent in a new conversation after "Oi"
and at a script question, counting urgent hand-offs; opt-out honoured through the engine;
and ms per message. No key, no network.

Sets: ``tests/data/understanding_tune.yaml`` (thresholds are chosen on it),
``tests/data/safety_tune.yaml`` (emergencies and look-alikes in everyday words; signs and
context mended on it) and the blind sets ``tests/data/understanding_blind.yaml`` and
``tests/data/safety_blind.yaml`` (each written without seeing the catalog or the training
corpus; scored once, never tuned against). ``--sweep`` prints accuracy and urgent figures over a
grid of thresholds — use it on the tuning set only.
Usage: python bench/understanding.py [--file F ...] [--errors] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import load_catalog

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SETS = tuple(
    DATA / name
    for name in (
        "understanding_tune.yaml",
        "safety_tune.yaml",
        "understanding_blind.yaml",
        "safety_blind.yaml",
    )
)
TUESDAY_10H = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # the clinic is open


def classify_all(engine: Engine, cases: list[dict[str, Any]]) -> tuple[list[str], float]:
    started = time.perf_counter()
    got = [engine.classify(case["text"]).intent or "out_of_scope" for case in cases]
    return got, (time.perf_counter() - started) * 1000 / max(len(cases), 1)


def calibration(engine: Engine, cases: list[dict[str, Any]], bins: int = 10) -> float:
    """Expected calibration error of the model's confidence in its chosen intent: the
    gap between confidence and accuracy, averaged over ten confidence bins (0 is perfect)."""
    pairs = []
    for case in cases:
        u = engine.classify(case["text"])
        if u.source == "model" and u.intent is not None:
            pairs.append((u.confidence, u.intent == case["intent"]))
    total = 0.0
    for b in range(bins):
        inside = [(c, ok) for c, ok in pairs if b / bins < c <= (b + 1) / bins]
        if inside:
            confidence = sum(c for c, _ in inside) / len(inside)
            accuracy = sum(ok for _, ok in inside) / len(inside)
            total += len(inside) * abs(confidence - accuracy)
    return round(total / max(len(pairs), 1), 4)


def training_texts(engine: Engine) -> set[str]:
    """Normalised texts the model learned from (the corpus and the catalog's own)."""
    from clinicflow.text import normalize
    from clinicflow.understanding.classifier import catalog_examples
    from clinicflow.understanding.corpus import load_corpus

    examples = [*load_corpus().examples, *catalog_examples(engine.catalog)]
    return {normalize(example.text) for example in examples}


def unseen_figures(cases: list[dict[str, Any]], got: list[str], seen: set[str]) -> dict[str, Any]:
    """Accuracy and urgent recall on the cases whose text is not training data (independent
    writers still write some of the same short messages)."""
    from clinicflow.text import normalize

    keep = [i for i, case in enumerate(cases) if normalize(case["text"]) not in seen]
    urgent = [i for i in keep if cases[i]["intent"] == "urgent"]
    return {
        "unseen_cases": len(keep),
        "accuracy_unseen": round(sum(got[i] == cases[i]["intent"] for i in keep) / len(keep), 4),
        "urgent_recall_classify_unseen": round(
            sum(got[i] == "urgent" for i in urgent) / max(len(urgent), 1), 4
        ),
    }


def intent_figures(cases: list[dict[str, Any]], got: list[str]) -> dict[str, Any]:
    truth = [case["intent"] for case in cases]
    hits = Counter(t for t, g in zip(truth, got, strict=True) if t == g)
    wanted, said = Counter(truth), Counter(got)
    per = {
        intent: {
            "precision": round(hits[intent] / said[intent], 3) if said[intent] else None,
            "recall": round(hits[intent] / wanted[intent], 3),
            "n": wanted[intent],
        }
        for intent in sorted(wanted)
    }
    return {"accuracy": round(sum(hits.values()) / len(cases), 4), "per_intent": per}


def through_engine(engine: Engine, text: str, chat: str, *, at_question: bool) -> Any:
    if at_question:
        engine.start(chat, "diu")
    else:
        engine.handle(chat, "Oi")
    return engine.handle(chat, text)


def safety_figures(
    engine: Engine, cases: list[dict[str, Any]], got: list[str], tag: str
) -> dict[str, Any]:
    urgent = [i for i, c in enumerate(cases) if c["intent"] == "urgent"]
    lookalikes = [i for i, c in enumerate(cases) if c.get("lookalike")]
    opt_outs = [i for i, c in enumerate(cases) if c["intent"] == "opt_out"]
    engine_urgent = {"greeting": 0, "question": 0}
    engine_alarms = {"greeting": 0, "question": 0}
    misses: list[str] = []
    alarms: list[str] = []
    for at_question in (False, True):
        where = "question" if at_question else "greeting"
        for i in urgent + lookalikes:
            chat = f"{tag}-{i}-{where}"  # a new conversation per case, per set
            result = through_engine(engine, cases[i]["text"], chat, at_question=at_question)
            handed = bool(result.handoff and result.handoff.urgent)
            if cases[i]["intent"] == "urgent":
                engine_urgent[where] += handed
                if not handed:
                    misses.append(f"[{where}] {cases[i]['text']}")
            elif handed:
                engine_alarms[where] += 1
                alarms.append(f"[{where}] {cases[i]['text']}")
    honoured = 0
    for i in opt_outs:
        result = through_engine(engine, cases[i]["text"], f"{tag}-o{i}", at_question=False)
        honoured += "opted_out" in result.event_types
    n_urgent = max(len(urgent), 1)
    return {
        "urgent_recall_classify": round(sum(got[i] == "urgent" for i in urgent) / n_urgent, 4),
        "urgent_recall_engine_after_greeting": round(engine_urgent["greeting"] / n_urgent, 4),
        "urgent_recall_engine_at_question": round(engine_urgent["question"] / n_urgent, 4),
        "urgent_cases": len(urgent),
        "lookalike_false_alarms_classify": sum(got[i] == "urgent" for i in lookalikes),
        "lookalike_false_alarms_engine": engine_alarms,
        "lookalike_cases": len(lookalikes),
        "opt_out_honoured": f"{honoured}/{len(opt_outs)}",
        "_errors": misses + alarms,
    }


def sweep(engine: Engine, cases: list[dict[str, Any]]) -> None:
    """Intent thresholds, then the safety detector's probabilities (classify figures)."""
    detector = engine.understander.safety
    urgent = [c["text"] for c in cases if c["intent"] == "urgent"]
    lookalikes = [c["text"] for c in cases if c.get("lookalike")]
    chosen = (detector.p_sure, detector.p_with_sign)
    for p_sure in (0.45, 0.55, 0.65, 0.75):
        for p_sign in (0.05, 0.12, 0.2, 0.3):
            detector.p_sure, detector.p_with_sign = p_sure, p_sign
            recall = sum(engine.classify(t).urgent for t in urgent) / max(len(urgent), 1)
            alarms = sum(engine.classify(t).urgent for t in lookalikes)
            point = {"p_sure": p_sure, "p_with_sign": p_sign, "urgent_recall": round(recall, 4)}
            print(json.dumps({**point, "false_alarms": alarms}))
    detector.p_sure, detector.p_with_sign = chosen
    base = engine.catalog.clinic.understanding
    for accept in (0.25, 0.30, 0.35, 0.40, 0.45):
        for sure in (0.5, 0.6, 0.7):
            engine.understander.thresholds = replace(base, intent_accept=accept, intent_sure=sure)
            got, _ = classify_all(engine, cases)
            figures = intent_figures(cases, got)
            print(json.dumps({"accept": accept, "sure": sure, "accuracy": figures["accuracy"]}))
    engine.understander.thresholds = base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, action="append", help="evaluation set (YAML)")
    parser.add_argument("--errors", action="store_true", help="print the misses to stderr")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="clinicflow-eval-"))
    engine = Engine(load_catalog(), data_dir=data, clock=ManualClock(TUESDAY_10H))
    seen = training_texts(engine)
    for path in args.file or SETS:
        cases = yaml.safe_load(path.read_text("utf-8"))["cases"]
        got, ms = classify_all(engine, cases)
        figures = intent_figures(cases, got)
        unseen = unseen_figures(cases, got, seen)
        safety = safety_figures(engine, cases, got, path.stem)
        errors = safety.pop("_errors")
        head = {"bench": "understanding", "set": path.name, "cases": len(cases)}
        tail = {"calibration_error": calibration(engine, cases), "ms_per_message": round(ms, 2)}
        print(json.dumps({**head, **figures, **unseen, **safety, **tail}))
        if args.errors:
            wrong = [
                f"{c['intent']:>17} <- {g:<17} {c['text']}"
                for c, g in zip(cases, got, strict=True)
                if c["intent"] != g
            ]
            print("\n".join(wrong + errors), file=sys.stderr)
        if args.sweep:
            sweep(engine, cases)
    engine.close_resources()


if __name__ == "__main__":
    main()
