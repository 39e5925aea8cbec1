"""``annscale demo`` (the README's first command) and the entry points."""

from __future__ import annotations

from cli_helpers import run_cli


def test_demo_runs_end_to_end(tmp_path):
    res = run_cli("demo", "--dir", tmp_path, "--cells", "400", "--genes", "300", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Done" in res.stdout
    import anndata

    combined = anndata.read_h5ad(tmp_path / "combined.h5ad")
    assert combined.shape == (800, 300)
    assert set(combined.obs["sample"]) == {"A", "B"}
    assert anndata.read_zarr(tmp_path / "B.zarr").shape == (400, 300)


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0
    assert res.stdout.startswith("annscale ")


def test_console_script_points_at_main():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "annscale"]
    assert ep.value == "annscale.cli:main"
    import annscale.cli

    assert ep.load() is annscale.cli.main


def test_help_lists_every_command():
    res = run_cli("--help")
    assert res.returncode == 0
    for command in ("info", "convert", "concat", "subset", "validate", "demo"):
        assert command in res.stdout


def test_no_command_is_a_usage_error():
    res = run_cli()
    assert res.returncode == 2
    assert "error" in res.stderr
