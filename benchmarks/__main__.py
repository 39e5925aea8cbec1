"""``python -m benchmarks [--quick] [--only NAME] [--skip NAME] [--repeat N] [--json]``."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import sys
import time
from pathlib import Path

from . import datasets, harness, report
from .profiles import PROFILES, Profile
from .workloads import GROUPS, Workload, load


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def select(registry: dict[str, Workload], only: list[str] | None) -> list[Workload]:
    """Workloads named by ``--only``: names, group names, or glob patterns; comma-separated.

    Without ``--only``: every workload except the hidden ones (measurement checks). A glob
    pattern matches hidden workloads only when it is their exact name.
    """
    if not only:
        return [wl for wl in registry.values() if not wl.hidden]
    wanted: list[str] = []
    for item in (part.strip() for arg in only for part in arg.split(",")):
        if not item:
            continue
        names = GROUPS.get(item) or [
            n for n in fnmatch.filter(registry, item) if n == item or not registry[n].hidden
        ]
        if not names:
            known = ", ".join([*registry, *GROUPS])
            raise SystemExit(f"unknown workload {item!r}; known: {known}")
        wanted += [n for n in names if n not in wanted]
    return [wl for name, wl in registry.items() if name in wanted]


def _data_summary(profile: Profile, data: dict) -> str:
    parts = []
    if "matrix" in data:
        import h5py

        with h5py.File(data["matrix"], "r") as f:
            nnz = f["X/data"].shape[0]
        m = profile.matrix
        size = Path(data["matrix"]).stat().st_size / 2**20
        parts.append(
            f"matrix {m.n_obs:,} x {m.n_vars:,} CSR float32, {nnz:,} nonzeros "
            f"(lognormal row sizes), {size:,.0f} MiB h5ad"
        )
    if "samples" in data:
        s = profile.samples
        parts.append(
            f"{s.n_samples} samples of {s.n_obs:,} x {s.n_vars:,} (gene shift {s.shift}, "
            f"{s.n_universe:,} genes in all)"
        )
    return "; ".join(parts)


def prepare_data(profile: Profile, needs: set[str], log=_log) -> dict:
    """Generate (or reuse) the datasets the selected workloads need; return their paths."""
    data: dict = {}
    if needs & {"matrix", "s3"}:
        data["matrix"] = str(datasets.matrix(profile.matrix, log=log))
    if "samples" in needs:
        files = datasets.samples(profile.samples, log=log)
        data["samples"] = [str(p) for p in files.paths]
        data["sample_keys"] = list(files.keys)
    return data


def output_name(profile: Profile, partial: bool) -> str:
    """``latest-<mode>``, with ``-partial`` when only some workloads were selected."""
    return f"latest-{profile.name}" + ("-partial" if partial else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="annscale against anndata, side by side, in fresh processes.",
    )
    parser.add_argument("--quick", action="store_true", help="small data: a few minutes on 2 cores")
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), help="data sizes (overrides --quick)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="workload name, group or glob (repeatable, comma-separated)",
    )
    parser.add_argument("--repeat", type=int, help="timed runs per side after the warm-up")
    parser.add_argument("--timeout", type=float, help="seconds before a run is killed")
    parser.add_argument(
        "--profile-side",
        metavar="SIDE",
        help="after timing, run SIDE (e.g. annscale) once more under pyinstrument; writes "
        "benchmarks/results/profiles/<mode>-<workload>-<side>.txt",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--skip",
        action="append",
        metavar="NAME",
        help="leave out these workloads (names, groups or globs); listed in the report",
    )
    parser.add_argument("--name", help="results file name under benchmarks/results/")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="put this run's table in README.md (done by default for a full run of all workloads)",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = parser.parse_args(argv)

    registry = load()
    if args.list:
        for wl in registry.values():
            print(f"{wl.name:24} {wl.description}")
        for group, names in GROUPS.items():
            print(f"{group:24} group: {', '.join(names)}")
        return 0
    profile = PROFILES[args.profile or ("quick" if args.quick else "full")]
    repeat = max(1, args.repeat or profile.repeat)
    timeout = args.timeout or profile.timeout_s
    selected = select(registry, args.only)
    skipped = [wl.name for wl in select(registry, args.skip)] if args.skip else []
    selected = [wl for wl in selected if wl.name not in skipped]
    needs = {n for wl in selected for n in wl.needs}

    t0 = time.perf_counter()
    machine = report.machine_info()  # load average and date when the run starts
    data = prepare_data(profile, needs)
    rows = []
    with contextlib.ExitStack() as stack:
        if "s3" in needs:
            from . import s3server

            try:
                s3 = stack.enter_context(s3server.serve({"matrix.h5ad": Path(data["matrix"])}))
            except Exception as exc:  # the S3 workloads then fail on both sides with this reason
                _log(f"could not start the S3 server: {exc!r}")
                data["s3"] = {"error": f"S3 server setup failed: {exc!r}"}
            else:
                data["s3"] = {
                    "url": s3["urls"]["matrix.h5ad"],
                    "storage_options": s3["storage_options"],
                }
        params = profile.params()
        for i, wl in enumerate(selected, 1):
            _log(f"[{i}/{len(selected)}] {wl.name}")
            row = harness.run_workload(
                wl, data, params, repeat, timeout, log=_log, slow_s=profile.slow_s
            )
            if args.profile_side and args.profile_side in wl.sides:
                path = (
                    report.RESULTS_DIR
                    / "profiles"
                    / f"{profile.name}-{wl.name}-{args.profile_side}.txt"
                )
                row["profile"] = harness.profile_side(
                    wl, args.profile_side, data, params, timeout, path, log=_log
                )
            rows.append(row)

    doc = {
        "machine": machine,
        "run": {
            "mode": profile.name,
            "repeat": repeat,
            "slow_s": profile.slow_s,
            "selected": [wl.name for wl in selected],
            "skipped": skipped,
            "data_summary": _data_summary(profile, data),
            "params": profile.params(),
            "seconds": round(time.perf_counter() - t0, 1),
        },
        "workloads": rows,
    }
    partial = bool(args.only)
    paths = report.write(doc, args.name or output_name(profile, partial))
    for message in doc.get("messages", []):
        _log(message)
    if args.readme or (profile.name == "full" and not partial and not args.name):
        readme = harness.REPO_ROOT / "README.md"
        if readme.exists() and report.update_readme(doc, readme):
            _log(f"updated the results section of {readme}")
    _log(f"wrote {', '.join(str(p) for p in paths.values())} in {doc['run']['seconds']} s")
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        print(report.markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
