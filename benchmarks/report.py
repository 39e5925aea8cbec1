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
    except OSError:
        commit = ""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
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
    return _seconds(entry["median_s"]), _mib(entry["median_peak_rss"])


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
    rows = [r for r in rows if r["kind"] == "scaling"]
    if not rows:
        return ""
    lines = [
        "| workload | 1 worker time | 1 worker peak RSS | 2 workers time | 2 workers peak RSS "
        "| speed-up | memory ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        one, two = (row["results"][s] for s in row["sides"])
        a_t, a_m = _side_cells(one)
        b_t, b_m = _side_cells(two)
        ratio = row.get("time_ratio")
        speedup = (
            "MISMATCH" if row.get("equal") is False else ("" if not ratio else f"{1 / ratio:.2f}x")
        )
        mem = "MISMATCH" if row.get("equal") is False else _ratio(row.get("mem_ratio"))
        lines.append(f"| {row['name']} | {a_t} | {a_m} | {b_t} | {b_m} | {speedup} | {mem} |")
    return "\n".join(lines)


def machine_lines(info: dict, run: dict) -> str:
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return "\n".join(
        [
            f"- mode: **{run['mode']}**, {run['repeat']} timed run(s) per side after one warm-up, "
            f"{info['date']}, commit {info['commit'] or '?'}",
            f"- machine: {info['cpus']} CPUs ({info['cpus_usable']} usable), "
            f"{info['memory_gib']} GiB RAM, {info['platform']}, Python {info['python']}",
            f"- packages: {pk}",
            f"- data: {run['data_summary']}",
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
        "started (interpreter, libraries, setup data); see benchmarks/README.md. Ratios are "
        "annscale / anndata: below 1 is better.",
        "",
        compare_table(doc["workloads"]),
    ]
    scaling = scaling_table(doc["workloads"])
    if scaling:
        parts += [
            "",
            "Scaling (annscale only; speed-up = 1-worker time / 2-worker time):",
            "",
            scaling,
        ]
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


def update_readme(doc: dict, readme: Path) -> bool:
    """Replace the results section of the README with this (full-mode) table."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    body = markdown(doc).split("\n", 2)[2]  # drop the title line
    readme.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}")
    return True
