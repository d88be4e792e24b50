"""Run benchmark topic scripts and record their tables in benchmarks/RESULTS.md.

Usage::

    python benchmarks/run.py                      # every topic, 1 thread
    python benchmarks/run.py spectral --threads 1 2 --repeat 9

Each topic is a script ``benchmarks/<topic>.py`` with ``main(argv) -> list[Table]``. Its tables
replace the section ``## <topic> (<threads> thread(s))`` of RESULTS.md (other sections are kept),
headed by the machine (CPU model from /proc/cpuinfo, core count, torch version) and the date.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import machine_description  # noqa: E402

RESULTS = HERE / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Written by `python benchmarks/run.py`; each section is replaced when its topic is re-run.\n"
    "Ratios are medians of back-to-back paired timings in one process (robust to load from other\n"
    "processes); absolute milliseconds are only indicative.\n"
)


def topics() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "run")


def update_section(text: str, title: str, body: str) -> str:
    """Replace (or append) the ``## title`` section of ``text`` with ``body``."""
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = f"## {title}\n\n{body.rstrip()}\n\n"
    if pattern.search(text):
        return pattern.sub(lambda _: section, text)
    return text.rstrip() + "\n\n" + section


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"topics to run (default: all of {topics()})")
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--note", default="", help="free text added under the section heading")
    args, extra = p.parse_known_args(argv)  # extra options go to the topic scripts
    names = args.names or topics()
    for name in names:
        module = importlib.import_module(name)
        for threads in args.threads:
            sub = ["--threads", str(threads), "--repeat", str(args.repeat)]
            sub += (["--quick"] if args.quick else []) + extra
            tables = module.main(sub)
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            body = f"Machine: {machine_description()}. Run: {stamp}, `--threads {threads}`.\n"
            if args.note:
                body += f"\n{args.note}\n"
            body += "\n" + "\n".join(t.markdown() for t in tables)
            # re-read right before writing: other runs may have updated other sections meanwhile
            text = RESULTS.read_text() if RESULTS.exists() else HEADER
            text = update_section(text, f"{name} ({threads} thread{'s' if threads > 1 else ''})", body)
            RESULTS.write_text(text)
            print(f"updated {RESULTS.name}: {name}, {threads} thread(s)")


if __name__ == "__main__":
    main()
