"""``annscale validate URL...``: check every element of a store against the format.

Checks encodings, shapes against obs/var, sparse ``indptr``/``indices``, categorical
codes, nullable arrays and missing zarr chunks (see :mod:`annscale.cli.checks`), reading
arrays chunk by chunk with bounded memory. Prints ``<url>: valid`` or a report naming
each problem (element path and what is wrong) and exits 1 when any store has a problem.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .arguments import add_store_arguments, new_command
from .output import Console, ProblemsFound
from .stores import expand_paths, storage_options

__all__ = ["add_parser", "run", "validate_store"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub, "validate", "check every element against the format (exit 1 on problems)", __doc__, run
    )
    add_store_arguments(p)


def validate_store(url: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The report of one store: ``{"url", "valid", "problems", "notes", "elements"}``."""
    import annscale.spec  # noqa: F401  (registers every encoding's reader)

    from ..errors import AnnscaleError
    from ..storage.location import as_location
    from ..storage.open import detect_kind, open_root
    from .checks import Problem, StoreChecker

    loc = as_location(url, options)
    try:
        kind = detect_kind(loc)
        with open_root(loc, "r", kind=kind) as root:
            checker = StoreChecker(root, loc, kind)
            problems = checker.run()
            notes, checked = checker.notes, checker.checked
    except AnnscaleError as e:  # cannot even be opened: that is the report
        problems, notes, checked = [Problem("/", e.message)], [], 0
    return {
        "url": loc.url,
        "valid": not problems,
        "elements": checked,
        "problems": [{"element": p.element, "message": p.message} for p in problems],
        "notes": notes,
    }


def run(args: argparse.Namespace, console: Console) -> int:
    options = storage_options(args)
    urls = expand_paths(args.url, options)
    reports = []
    with console.counting(len(urls) if len(urls) > 1 else None, "validating", "stores") as bar:
        for url in urls:
            reports.append(validate_store(url, options))
            bar.update()
    if args.json:
        console.result(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for r in reports:
            if r["valid"]:
                console.result(f"{r['url']}: valid ({r['elements']} elements checked)")
            else:
                n = len(r["problems"])
                console.result(f"{r['url']}: {n} problem{'s' if n != 1 else ''}")
                for p in r["problems"]:
                    console.result(f"  {p['element']}: {p['message']}")
            for note in r["notes"]:
                console.note(f"note: {r['url']}: {note}")
    if any(not r["valid"] for r in reports):
        raise ProblemsFound
    return 0
