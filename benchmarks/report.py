"""Turn collected results into a table (markdown), a JSON file and a PNG chart of the ratios."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = (
    "annscale",
    "anndata",
    "numpy",
    "scipy",
    "pandas",
    "h5py",
    "zarr",
    "dask",
    "distributed",
    "fsspec",
    "s3fs",
    "moto",
)
MiB = 2**20


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU count, memory, OS, Python and the versions of the packages involved."""
    import psutil

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=False,
        ).stdout.strip()
        if commit and dirty:
            commit += " + uncommitted changes"
    except OSError:
        commit = ""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        # other work on the machine slows every side alike but adds noise: recorded, not hidden
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "commit": commit,
        "packages": versions,
    }


def _seconds(x: float) -> str:
    return f"{x:.3g} s" if x >= 0.01 else f"{x * 1000:.3g} ms"


def _mib(x: float) -> str:
    return f"{x / MiB:,.0f} MiB"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def _short(text: str, n: int = 90) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1] + "…"


def _side_cells(entry: dict) -> tuple[str, str]:
    if entry.get("error"):
        return f"fails: {_short(entry['error'])}", ""
    if "median_s" not in entry:
        return "not run", ""
    added = entry.get("median_peak_added")
    extra = "" if added is None else f" (+{added / MiB:,.0f})"
    once = any(r.get("warmup_counted") for r in entry.get("runs", []))
    return (
        _seconds(entry["median_s"]) + (" (1 run)" if once else ""),
        _mib(entry["median_peak_rss"]) + extra,
    )


def _ratio_cells(row: dict) -> tuple[str, str]:
    if row.get("equal") is False:
        return "MISMATCH", "MISMATCH"
    return _ratio(row.get("time_ratio")), _ratio(row.get("mem_ratio"))


def compare_table(rows: list[dict]) -> str:
    lines = [
        "| workload | anndata time | anndata peak RSS | annscale time | annscale peak RSS "
        "| time ratio | memory ratio | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row["kind"] != "compare":
            continue
        a_t, a_m = _side_cells(row["results"]["anndata"])
        b_t, b_m = _side_cells(row["results"]["annscale"])
        t_r, m_r = _ratio_cells(row)
        note = _short(row.get("note", ""), 140)
        if row.get("equal") is False:
            note = _short(f"MISMATCH: {row['differences'][0]}", 140)
        lines.append(f"| {row['name']} | {a_t} | {a_m} | {b_t} | {b_m} | {t_r} | {m_r} | {note} |")
    return "\n".join(lines)


def scaling_table(rows: list[dict]) -> str:
    """annscale against itself in two configurations (sides A and B): speed-up = A / B time."""
    rows = [r for r in rows if r["kind"] == "scaling"]
    if not rows:
        return ""
    lines = [
        "| workload | side A | time | peak RSS | side B | time | peak RSS "
        "| speed-up (A time / B time) | memory ratio (B / A) | notes |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        a, b = row["sides"]
        a_t, a_m = _side_cells(row["results"][a])
        b_t, b_m = _side_cells(row["results"][b])
        ratio = row.get("time_ratio")
        speedup = (
            "MISMATCH" if row.get("equal") is False else ("" if not ratio else f"{1 / ratio:.2f}x")
        )
        mem = "MISMATCH" if row.get("equal") is False else _ratio(row.get("mem_ratio"))
        note = _short(row.get("note", ""), 140)
        lines.append(
            f"| {row['name']} | {a} | {a_t} | {a_m} | {b} | {b_t} | {b_m} | {speedup} | {mem} "
            f"| {note} |"
        )
    return "\n".join(lines)


def check_table(rows: list[dict]) -> str:
    """Measurement checks: the peak each side added over its baseline, against the expected."""
    rows = [r for r in rows if r["kind"] == "check"]
    if not rows:
        return ""
    lines = ["| check | side | peak RSS (+ over baseline) | time |", "|---|---|---:|---:|"]
    for row in rows:
        for side in row["sides"]:
            t, m = _side_cells(row["results"][side])
            lines.append(f"| {row['name']} | {side} | {m} | {t} |")
    return "\n".join(lines)


def machine_lines(info: dict, run: dict) -> str:
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return "\n".join(
        [
            f"- mode: **{run['mode']}**, {run['repeat']} timed run(s) per side after one warm-up"
            + (
                f" (a side whose warm-up takes {run['slow_s']:.0f} s or more is timed once: "
                "its warm-up counts, marked '(1 run)')"
                if run.get("slow_s")
                else ""
            )
            + f", {info['date']}, commit {info['commit'] or '?'}",
            f"- machine: {info.get('processor', '?')}, {info['cpus']} CPUs "
            f"({info['cpus_usable']} usable), {info['memory_gib']} GiB RAM, {info['platform']}, "
            f"Python {info['python']}; load average when the run started: "
            f"{' / '.join(map(str, info.get('load_average') or [])) or '?'} (1/5/15 min)",
            f"- packages: {pk}",
            f"- data: {run['data_summary']}",
            *([f"- not run this time: {', '.join(run['skipped'])}"] if run.get("skipped") else []),
        ]
    )


def markdown(doc: dict) -> str:
    parts = [
        f"# annscale vs anndata ({doc['run']['mode']} mode)",
        "",
        machine_lines(doc["machine"], doc["run"]),
        "",
        "Times: median wall time of the measured block. Peak RSS: median over runs of the "
        "process's peak resident memory during that block, including what was resident when it "
        "started (interpreter, libraries, setup data); in brackets, how much the block added "
        "on top of that baseline (MiB). See benchmarks/README.md. Ratios are annscale / "
        "anndata (of time and of the whole peak RSS): below 1 is better. Rows count only when "
        "both sides' results were equal (digests compared).",
    ]
    if any(r["kind"] == "compare" for r in doc["workloads"]):
        parts += ["", compare_table(doc["workloads"])]
    scaling = scaling_table(doc["workloads"])
    if scaling:
        parts += [
            "",
            "Scaling (annscale against itself in two configurations):",
            "",
            scaling,
        ]
    checks = check_table(doc["workloads"])
    if checks:
        parts += ["", "Measurement checks (not comparisons):", "", checks]
    return "\n".join(parts) + "\n"


def chart(doc: dict, path: Path) -> str | None:
    """Draw the time and memory ratios as horizontal bars (log scale). Returns an error or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no PNG chart (pip install matplotlib)"
    import numpy as np

    rows = [r for r in doc["workloads"] if r["kind"] == "compare"]
    if not rows:
        return "no anndata/annscale comparison was run: no PNG chart"
    names = [r["name"] for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.6))
    for offset, key, label, color in (
        (-0.2, "time_ratio", "time", "tab:blue"),
        (0.2, "mem_ratio", "peak memory", "tab:orange"),
    ):
        values = [r.get(key) if r.get("equal") else None for r in rows]
        ax.barh(
            y + offset,
            [v if v else np.nan for v in values],
            height=0.38,
            label=f"{label} (annscale / anndata)",
            color=color,
        )
    for i, r in enumerate(rows):
        if not r.get("equal"):
            failed = [s for s in r["sides"] if r["results"][s].get("error")]
            text = "MISMATCH" if r.get("equal") is False else f"{'/'.join(failed) or '?'} fails"
            ax.text(1.0, i, f"  {text}", va="center", fontsize=8, color="gray")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    ratio_label = FuncFormatter(lambda v, _: f"{v:g}x")
    ax.xaxis.set_major_formatter(ratio_label)
    ax.xaxis.set_minor_formatter(ratio_label)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("ratio (log scale; < 1: annscale better)")
    ax.set_title(f"annscale / anndata, {doc['run']['mode']} mode, {doc['machine']['date']}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write(doc: dict, name: str) -> dict[str, Path]:
    """Write ``<name>.md``, ``<name>.json`` and ``<name>.png`` under ``benchmarks/results``."""
    import json

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    paths = {"md": RESULTS_DIR / f"{name}.md", "json": RESULTS_DIR / f"{name}.json"}
    paths["md"].write_text(markdown(doc))
    paths["json"].write_text(json.dumps(doc, indent=1, default=str) + "\n")
    png = RESULTS_DIR / f"{name}.png"
    problem = chart(doc, png)
    if problem is None:
        paths["png"] = png
    else:
        doc.setdefault("messages", []).append(problem)
    return paths


README_START = "<!-- latest-full-results:start -->"
README_END = "<!-- latest-full-results:end -->"


def readme_section(doc: dict) -> str:
    """The results as embedded in the repository's README: a label line, then the table."""
    mode = doc["run"]["mode"]
    label = (
        f"Latest **{mode}-mode** run (`python -m benchmarks{'' if mode == 'full' else ' --quick'}`)"
    )
    if mode != "full":
        label += (
            ". This is the small quick mode, shown because no full-mode run has completed "
            "yet; its times are dominated by fixed costs and are not the full benchmark"
        )
    failed = [
        r["name"] for r in doc["workloads"] if any(v.get("error") for v in r["results"].values())
    ]
    if failed:
        label += (
            f". {len(failed)} workload(s) failed on at least one side in this run (the cells say "
            "why; tracebacks in benchmarks/results/latest-" + mode + ".json)"
        )
    body = markdown(doc).split("\n", 2)[2]  # drop the title line
    return f"{label}.\n\n{body}"


def update_readme(doc: dict, readme: Path) -> bool:
    """Replace the text between the results markers of ``readme`` with this run's table.

    Returns False (and changes nothing) when the markers are missing.
    """
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{readme_section(doc)}\n{README_END}{tail}")
    return True
