"""deploy/: the recipes parse and are consistent; local-cluster.sh runs a job and stops."""

from __future__ import annotations

import os
import py_compile
import re
import subprocess

import anndata
import dask.config
import distributed  # noqa: F401  (loads distributed's configuration defaults)
import pytest
import yaml
from cluster_helpers import REPO, SCRIPT, ScriptCluster, executed_tasks, write_samples
from cluster_jobs import CONCAT, lazy_concat

import annscale as ad

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
SECRET_NAMES = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|PRIVATE)", re.I)


def _k8s_documents() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"], doc["metadata"]["name"]] = doc
    return docs


def _leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else k
        out.extend(_leaf_keys(v, key) if isinstance(v, dict) else [key])
    return out


@pytest.mark.parametrize(
    "script", [SCRIPT, DEPLOY / "slurm" / "annscale-cluster.sbatch"], ids=lambda p: p.name
)
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_slurm_example_compiles(tmp_path):
    py_compile.compile(str(DEPLOY / "slurm" / "cluster.py"), cfile=str(tmp_path / "c.pyc"))


def test_compose_file():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"scheduler", "worker", "client"} <= set(services)
    worker = services["worker"]["command"]
    assert worker[:3] == ["dask", "worker", "tcp://scheduler:8786"]
    assert "--nthreads" in worker and "--memory-limit" in worker
    assert services["client"]["environment"]["ANNSCALE_SCHEDULER"] == "tcp://scheduler:8786"
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAMES.search(key):  # credentials come from the host, never literal
                assert re.fullmatch(r"\$\{\w+:-\}", value), (name, key, value)


def test_dockerfile_runs_unprivileged_without_credentials():
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for line in re.findall(r"^(?:ENV|ARG)\s+.*$", text, re.M):
        assert not SECRET_NAMES.search(line), line
    assert 'pip install ".[s3,gcs]"' in text


def test_kubernetes_manifests_are_consistent():
    docs = _k8s_documents()
    scheduler = docs["Deployment", "annscale-scheduler"]
    worker = docs["Deployment", "annscale-worker"]
    service = docs["Service", "annscale-scheduler"]
    for deployment in (scheduler, worker):
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert "annscale-dask-tls" in secrets
        assert {"--tls-ca-file", "--tls-cert", "--tls-key"} <= set(container["args"])
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["DASK_CONFIG"] == "/etc/dask"
    sched_labels = scheduler["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= sched_labels.items()
    (worker_container,) = worker["spec"]["template"]["spec"]["containers"]
    args = worker_container["args"]
    assert f"tls://{service['metadata']['name']}:8786" in args
    assert args[args.index("--nthreads") + 1] == "1"


def test_tls_config_names_real_distributed_settings():
    config_map = _k8s_documents()["ConfigMap", "annscale-dask-config"]
    tls = yaml.safe_load(config_map["data"]["distributed-tls.yaml"])
    assert tls["distributed"]["comm"]["require-encryption"] is True
    for key in _leaf_keys(tls):
        # every key exists in distributed's own defaults (a typo would be silently ignored)
        assert dask.config.get(key, default=KeyError) is not KeyError, key


def test_local_cluster_script_runs_a_job_and_stops(tmp_path, no_client_cache):
    paths, adatas = write_samples(tmp_path, 3, cells=50, genes=30, seed=3)
    cluster = ScriptCluster(tmp_path / "cluster", workers=2).start()
    pids = [*cluster.worker_pids(), int((cluster.directory / "scheduler.pid").read_text())]
    try:
        assert cluster.address.startswith("tcp://127.0.0.1:")
        assert cluster._run("address") == cluster.address
        with cluster.client() as watch:
            assert len(watch.scheduler_info()["workers"]) == 2
            before = executed_tasks(watch)
            with ad.settings.override(scheduler=cluster.address, progress=False):
                lazy_concat(paths).write_zarr(tmp_path / "out.zarr")
            assert executed_tasks(watch) > before  # the write ran on the workers
    finally:
        cluster.stop()
    for pid in pids:  # every process group it started is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    got = anndata.read_zarr(tmp_path / "out.zarr")
    expected = anndata.concat(adatas, **CONCAT)
    assert (got.X != expected.X).nnz == 0
    assert got.obs.equals(expected.obs) and list(got.var_names) == list(expected.var_names)
