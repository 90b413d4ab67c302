"""Write district.json, submissions.json and truth.json for a synthetic district.

    python -m sandbox.generate --students N --seed S --out DIR [--submissions-share 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from sandbox.generator import ALL_FORMS, build_all, build_district, build_submissions

__all__ = ["build_all", "build_district", "build_submissions", "dumps", "main", "write_files"]


def _compact(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def dumps(obj) -> str:
    """JSON with one record per line: small enough for 50k students, still greppable and diffable."""
    def block(value, indent: str) -> str:
        if isinstance(value, list) and value:
            return "[\n" + ",\n".join(indent + " " + _compact(v) for v in value) + "\n" + indent + "]"
        if isinstance(value, dict) and value and all(isinstance(v, (dict, list)) for v in value.values()):
            return "{\n" + ",\n".join(f"{indent} {_compact(k)}: {block(v, indent + ' ')}" for k, v in value.items()) \
                + "\n" + indent + "}"
        return _compact(value)

    return block(obj, "") + "\n"


def _dump(obj, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(dumps(obj))


def write_files(out: Path, students: int, seed: int, submissions_share: float = 0.5,
                forms: tuple[str, ...] = ("registration-2026",)) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    district, submissions, truth = build_all(students, seed, submissions_share, forms)
    paths = {"district": out / "district.json", "submissions": out / "submissions.json",
             "truth": out / "truth.json"}
    _dump(district, paths["district"])
    _dump(submissions, paths["submissions"])
    _dump(truth, paths["truth"])
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox.generate", description=__doc__.strip().splitlines()[0])
    ap.add_argument("--students", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--submissions-share", type=float, default=0.5)
    ap.add_argument("--forms", default="registration-2026",
                    help="comma-separated forms the families submit, or 'all' (default: registration-2026 only): "
                         + ", ".join(ALL_FORMS))
    args = ap.parse_args(argv)
    forms = ALL_FORMS if args.forms == "all" else tuple(f.strip() for f in args.forms.split(",") if f.strip())
    unknown = set(forms) - set(ALL_FORMS)
    if unknown:
        ap.error(f"unknown form(s): {', '.join(sorted(unknown))}")
    if args.students < 1:
        ap.error("--students must be >= 1")
    if not 0 <= args.submissions_share <= 1:
        ap.error("--submissions-share must be within 0..1")
    t0 = time.perf_counter()
    paths = write_files(args.out, args.students, args.seed, args.submissions_share, forms)
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    mix = Counter(t["scenario"] for t in truth["submissions"].values())
    by_form = Counter((t.get("form") or {}).get("form", "registration-2026") for t in truth["submissions"].values())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - t0:.1f}s; "
          f"{len(truth['submissions'])} submissions: {dict(sorted(mix.items()))}; forms {dict(sorted(by_form.items()))}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
