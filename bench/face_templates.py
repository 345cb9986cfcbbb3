"""Matching a selfie against several enrolled photos: which rule separates genuine from impostor.

Run: ``python -m bench.face_templates [--k 1 2 3] [--threshold 0.5] [--json out.json]``
(faces from $FIREWATCH_DATA/faces: the labelled photos of both sets, 19 people).

For each person with more than ``k`` photos, every choice of ``k`` photos is enrolled (at
most ``--sets`` choices per person) and the person's other photos are the genuine probes;
every photo of everyone else is an impostor probe. The distance of a probe to an enrolment
is, by rule: ``best`` the nearest template, ``mean`` the mean distance to the templates,
``centroid`` the distance to the templates' mean encoding. Reported per rule and k: genuine
and impostor probes accepted at the threshold, the median and largest genuine and the smallest impostor
distance, and the ROC AUC (the chance that a genuine probe is nearer than an impostor).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.help import user_help
from firewatch.paths import data_root
from vision.faces import FaceEncoder, face_distance

Rule = Callable[[np.ndarray, np.ndarray], float]
RULES: dict[str, Rule] = {
    "best": lambda templates, probe: float(face_distance(templates, probe).min()),
    "mean": lambda templates, probe: float(face_distance(templates, probe).mean()),
    "centroid": lambda templates, probe: float(face_distance(templates.mean(axis=0)[None, :], probe)[0]),
}


@dataclass(frozen=True)
class RuleResult:
    rule: str
    k: int
    genuine: int
    impostor: int
    genuine_accepted: float
    impostor_accepted: float
    median_genuine: float
    max_genuine: float
    min_impostor: float
    auc: float


def labelled_encodings(faces: Path, encoder: FaceEncoder) -> list[tuple[str, np.ndarray]]:
    """(identity, encoding) of every labelled photo with exactly one face."""
    sets = [(faces / "deepface" / "tests" / "unit" / "dataset", faces / "deepface" / "identities.csv", "identity_id"),
            (faces / "face_recognition", faces / "face_recognition" / "identities.csv", "identity")]
    found = []
    for root, table, column in sets:
        with table.open(newline="") as handle:
            for row in csv.DictReader(handle):
                result = encoder.encode((root / row["file"]).read_bytes())
                if result.encoding is not None:
                    found.append((f"{table.parent.name}:{row[column]}", result.encoding))
    return found


def compare(photos: Sequence[tuple[str, np.ndarray]], k: int, threshold: float, sets: int) -> list[RuleResult]:
    people: dict[str, list[int]] = {}
    for i, (identity, _) in enumerate(photos):
        people.setdefault(identity, []).append(i)
    encodings = np.stack([e for _, e in photos])
    distances: dict[str, tuple[list[float], list[float]]] = {rule: ([], []) for rule in RULES}
    for identity, indices in people.items():
        if len(indices) <= k:
            continue
        for enrolled in itertools.islice(itertools.combinations(indices, k), sets):
            templates = encodings[list(enrolled)]
            for j, (other, encoding) in enumerate(photos):
                if j in enrolled:
                    continue
                for rule, measure in RULES.items():
                    distances[rule][0 if other == identity else 1].append(measure(templates, encoding))
    results = []
    for rule, (genuine, impostor) in distances.items():
        g, i = np.array(genuine), np.array(impostor)
        auc = float((g[:, None] < i[None, :]).mean() + 0.5 * (g[:, None] == i[None, :]).mean())
        results.append(RuleResult(rule, k, g.size, i.size, float((g <= threshold).mean()),
                                  float((i <= threshold).mean()), float(np.median(g)), float(g.max()), float(i.min()), auc))
    return results


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> list[RuleResult]:
    """``python -m bench.face_templates``: print the table; return the results."""
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3], help="photos enrolled per person")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--sets", type=int, default=20, help="enrolments tried per person, at most")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    photos = labelled_encodings(data_root() / "faces", FaceEncoder())
    results = [r for k in args.k for r in compare(photos, k, args.threshold, args.sets)]
    print(f"{len(photos)} photos; accepted at {args.threshold}")
    print(f"{'rule':<9}{'k':>2}{'genuine':>9}{'accepted':>10}{'impostor':>10}{'accepted':>10}"
          f"{'med gen.':>10}{'max gen.':>10}{'min imp.':>10}{'AUC':>8}")
    for r in results:
        print(f"{r.rule:<9}{r.k:>2}{r.genuine:>9}{r.genuine_accepted:>10.1%}{r.impostor:>10}"
              f"{r.impostor_accepted:>10.2%}{r.median_genuine:>10.3f}{r.max_genuine:>10.3f}{r.min_impostor:>10.3f}{r.auc:>8.4f}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results


if __name__ == "__main__":
    cli()
