"""deploy/: the Kubernetes manifests are valid Kubernetes (offline, strict schemas) and cannot drift from
counterbench's command line, from the scenario file they carry, or from each other; the Dockerfile installs
this package and runs counterbench. No cluster, network or docker: the schemas ship with kubernetes-validate.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fnmatch
import functools
import io
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from harness.cli import parser
from harness.config import load_scenarios
from harness.core.loopback import check_listen

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# 1.29: the first release where the worker Job's backoffLimitPerIndex is on by default (beta); 1.30: a
# current cluster; and the newest schemas this kubernetes-validate ships
KUBERNETES_VERSIONS = ("1.29", "1.30", kubernetes_validate.latest_version())


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(K8S)}:{self.doc['kind']}/{self.doc['metadata']['name']}"


def manifests() -> list[Manifest]:
    """Every Kubernetes object under deploy/kubernetes (kustomization files are kustomize's, not the API's)."""
    return [Manifest(path, copy.deepcopy(doc)) for path, doc in _parsed()]


@functools.cache
def _parsed() -> tuple[tuple[Path, dict[str, Any]], ...]:
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return tuple(out)


def kind(k: str) -> list[Manifest]:
    return [m for m in manifests() if m.doc["kind"] == k]


def named(k: str, name: str) -> dict[str, Any]:
    found = [m.doc for m in kind(k) if m.doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {k} named {name!r}, found {len(found)}"
    return found[0]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return doc["metadata"].get("labels", {}) if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]["labels"]


def counterbench_argv(container: dict[str, Any]) -> list[str] | None:
    """The container's arguments to counterbench (the image's ENTRYPOINT), or None when it runs something else."""
    command = container.get("command")
    if command is None:
        return [str(a) for a in container.get("args", [])]
    if command[0] != "counterbench":
        return None
    return [str(a) for a in [*command[1:], *container.get("args", [])]]


def subcommand(name: str) -> argparse.ArgumentParser:
    subs = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subs.choices[name]


def parse(argv: list[str]) -> argparse.Namespace:
    """counterbench's own parser, as `counterbench ARGV` would parse it; an error fails the test with its message.
    Options must be spelled out: argparse would take an abbreviation that a new option can make ambiguous."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"counterbench {' '.join(argv)}: {err.getvalue().strip()}")
    known = subcommand(argv[0])._option_string_actions
    for token in argv[1:]:
        if token.startswith("-"):
            assert token.split("=", 1)[0] in known, f"counterbench {argv[0]}: {token} is not an option spelled out"
    return args


def job_command(job: str) -> tuple[dict[str, Any], dict[str, Any], argparse.Namespace]:
    """A Job's pod spec, its counterbench container, and that container's parsed command line."""
    spec = pod_spec(named("Job", job))
    runs = [c for c in spec["containers"] if counterbench_argv(c) is not None]
    assert len(runs) == 1, f"Job {job}: expected one counterbench container, found {len(runs)}"
    argv = counterbench_argv(runs[0])
    assert argv is not None
    return spec, runs[0], parse(argv)


def master() -> tuple[dict[str, Any], dict[str, Any], argparse.Namespace]:
    return job_command("counterbench-master")


def worker() -> tuple[dict[str, Any], dict[str, Any], argparse.Namespace]:
    return job_command("counterbench-worker")


def mount_of(spec: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mount a path in the container lies under (the deepest), and the pod's volume it mounts."""
    mounts = [m for m in container.get("volumeMounts", []) if Path(path).is_relative_to(m["mountPath"])]
    assert mounts, f"{path} is on no volume of container {container['name']}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    return mount, volume


def _walk(doc: Any) -> Iterator[Any]:
    yield doc
    if isinstance(doc, dict):
        for v in doc.values():
            yield from _walk(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _walk(v)


# ---- Kubernetes' own rules


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: m.id)
def test_every_manifest_is_valid_kubernetes_in_strict_mode(manifest: Manifest, version: str) -> None:
    try:
        kubernetes_validate.validate(manifest.doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path)
        pytest.fail(f"{manifest.id} against Kubernetes {e.version}: {where}: {e.message}")


def test_the_manifests_name_no_namespace() -> None:
    """Namespace-agnostic: `kubectl apply -k deploy/kubernetes -n NS` puts them where the user says."""
    assert manifests()
    for m in manifests():
        assert "namespace" not in m.doc["metadata"], f"{m.id} names a namespace"


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_a_kustomization_lists_every_manifest_of_its_folder(kustomization: Path) -> None:
    doc = yaml.safe_load(kustomization.read_text())
    assert doc["kind"] == "Kustomization"
    files = {p.name for p in kustomization.parent.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert files, f"{kustomization}: no manifests next to it"
    assert sorted(doc["resources"]) == sorted(files), f"{kustomization}: resources differ from the folder's files"
    # its image rewrite (`kustomize edit set image`) reaches every container of its manifests
    used = {node["image"].split(":")[0] for m in manifests() if m.path.parent == kustomization.parent
            for node in _walk(m.doc) if isinstance(node, dict) and "image" in node}
    assert used and {i["name"] for i in doc.get("images", [])} == used


def test_every_manifest_is_applied_by_a_kustomization() -> None:
    listed = {k.parent / r for k in kustomizations() for r in yaml.safe_load(k.read_text())["resources"]}
    for m in manifests():
        assert m.path in listed, f"{m.path.relative_to(K8S)} is in no kustomization"


# ---- the command lines: counterbench's own parser, and what the flags must agree with


def test_the_commands_parse_with_counterbench_own_parser() -> None:
    commands: list[str] = []
    for m in manifests():
        if m.doc["kind"] in ("Pod", "Job"):
            for c in pod_spec(m.doc)["containers"]:
                argv = counterbench_argv(c)
                if argv is not None:
                    commands.append(parse(argv).command)
    assert sorted(commands) == ["run", "worker"], commands


def test_the_master_waits_for_as_many_workers_as_the_worker_job_runs() -> None:
    _, _, args = master()
    assert args.master and args.processes == 1
    assert args.expect_workers >= 1
    job = named("Job", "counterbench-worker")["spec"]
    assert args.expect_workers == job["parallelism"] == job["completions"]


def test_the_master_listens_where_the_workers_reach_it() -> None:
    _, container, args = master()
    _, _, wargs = worker()
    # the harness's own rule: a non-loopback listener needs --allow-remote-workers
    check_listen(args.master_bind_host, allow_remote=args.allow_remote_workers, what="the master's port",
                 flag="--allow-remote-workers")
    assert args.master_bind_host in ("0.0.0.0", "*", "::"), "workers in other pods need every interface"
    service = named("Service", wargs.master_host)
    assert service["spec"]["selector"].items() <= pod_labels(named("Job", "counterbench-master")).items()
    assert not service["spec"]["selector"].items() <= pod_labels(named("Job", "counterbench-worker")).items()
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == wargs.master_port]
    target = port.get("targetPort", port["port"])
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert ports.get(target, target) == args.master_bind_port, "the Service forwards to another port"
    assert args.master_bind_port in ports.values()


def test_only_the_workers_may_reach_the_master_port() -> None:
    _, _, args = master()
    (policy,) = [m.doc for m in kind("NetworkPolicy")]
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels(named("Job", "counterbench-master")).items()
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= pod_labels(named("Job", "counterbench-worker")).items()
    assert [p["port"] for p in rule["ports"]] == [args.master_bind_port]


def test_master_and_workers_run_one_scenario_of_the_configmap_that_allows_remote_targets(tmp_path: Path) -> None:
    mspec, mcontainer, margs = master()
    wspec, wcontainer, wargs = worker()
    assert margs.scenario == [wargs.scenario], "the workers' locustfile comes from their own -s"
    assert margs.suite is None
    for spec, container, file in ((mspec, mcontainer, margs.file), (wspec, wcontainer, wargs.file)):
        assert file is not None, "without -f counterbench reads ./scenarios.yaml, else the shipped ones"
        mount, volume = mount_of(spec, container, file)
        assert "configMap" in volume, f"{file} is not on the ConfigMap"
        key = str(Path(file).relative_to(mount["mountPath"]))
        data = named("ConfigMap", volume["configMap"]["name"])["data"]
        assert key in data, f"the ConfigMap has no {key}"
        (tmp_path / key).write_text(data[key])
        scenarios = load_scenarios(tmp_path / key)  # counterbench's own validation of the file
        assert wargs.scenario in scenarios
        for name, scenario in scenarios.items():
            # the image holds no local servers, and an in-cluster Service is no loopback address
            assert scenario.target.url, f"{name}: no target.url: counterbench would start a local target"
            assert scenario.allow_remote, f"{name}: without allow_remote counterbench refuses a non-loopback target"


def test_the_run_folder_is_on_the_volume_and_the_workers_stage_on_theirs() -> None:
    spec, container, args = master()
    out = args.out or str(Path(container.get("workingDir", "/")) / "reports")
    _, volume = mount_of(spec, container, out)
    claim = volume["persistentVolumeClaim"]["claimName"]
    named("PersistentVolumeClaim", claim)
    wspec, wcontainer, wargs = worker()
    assert wargs.dir, "without --dir a worker stages in a temporary folder"
    _, wvolume = mount_of(wspec, wcontainer, wargs.dir)
    assert "emptyDir" in wvolume


def test_the_pods_run_as_a_user_with_limits_and_writable_scratch() -> None:
    for m in manifests():
        if m.doc["kind"] not in ("Pod", "Job"):
            continue
        spec = pod_spec(m.doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, m.id
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for v in spec.get("volumes", []):  # what a volume names is among the manifests
            if "persistentVolumeClaim" in v:
                named("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])
            if "configMap" in v:
                named("ConfigMap", v["configMap"]["name"])
        for c in spec["containers"]:
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= c["resources"][section].keys(), f"{m.id}: {c['name']} {section}"
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{m.id}: mount of an undefined volume {mount['name']}"
            if c.get("securityContext", {}).get("readOnlyRootFilesystem") and counterbench_argv(c) is not None:
                mount_of(spec, c, "/tmp")  # temporary files, matplotlib's cache, a crash's trace


def test_a_failed_worker_is_not_replaced_and_does_not_end_the_others() -> None:
    job = named("Job", "counterbench-worker")["spec"]
    assert job["completionMode"] == "Indexed", "backoffLimitPerIndex needs an Indexed Job"
    assert job["backoffLimitPerIndex"] == 0
    assert "backoffLimit" not in job, "a Job-wide backoff limit would stop the other workers"
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    mjob = named("Job", "counterbench-master")["spec"]
    assert mjob["backoffLimit"] == 0 and mjob["template"]["spec"]["restartPolicy"] == "Never"


# ---- the image


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (name, arguments), continuation lines joined, comments dropped."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.strip():
            name, _, rest = line.strip().partition(" ")
            out.append((name.upper(), rest.strip()))
    return out


def copied() -> list[str]:
    """The sources of every COPY from the build context."""
    out: list[str] = []
    for name, rest in instructions():
        if name == "COPY" and not rest.startswith("--from"):
            parts = [p for p in rest.split() if not p.startswith("--")]
            out += [p.rstrip("/") for p in parts[:-1]]
    return out


def test_the_image_is_python_slim_and_runs_counterbench_as_a_user() -> None:
    ins = instructions()
    assert re.fullmatch(r"python:3\.1[12]-slim", next(rest for name, rest in ins if name == "FROM"))
    entry = [rest for name, rest in ins if name == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["counterbench"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "counterbench" in scripts, "the ENTRYPOINT is the console script pip installs"
    users = [rest for name, rest in ins if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    pods = [pod_spec(m.doc) for m in manifests() if m.doc["kind"] in ("Pod", "Job")]
    pod_users = {spec["securityContext"]["runAsUser"] for spec in pods}
    assert pod_users == {int(users[-1].split(":")[0])}, "the manifests run as the image's user"


def test_the_image_pip_installs_this_package_from_the_copied_source() -> None:
    runs = [rest for name, rest in instructions() if name == "RUN"]
    assert any(re.search(r"\bpip install\b[^&;|]*\s\.(\s|$)", r) for r in runs), "no `pip install .`"
    sources = copied()
    assert "pyproject.toml" in sources and "harness" in sources
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["readme"] in sources, "setuptools reads the readme pyproject names"
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the build context"
    # harness/data links to top-level files (the package data): a link without its target builds a wheel
    # without the locustfiles or the shipped scenarios
    for link in (ROOT / "harness" / "data").iterdir():
        if link.is_symlink():
            target = str(link.resolve().relative_to(ROOT))
            assert any(target == s or target.startswith(f"{s}/") for s in sources), f"COPY {target}: {link} needs it"


def test_the_build_context_keeps_what_the_image_copies() -> None:
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for must in (".venv", ".git", ".stack", "build", "runs"):
        assert must in patterns, f".dockerignore: {must} would go into the build context"
    for src in copied():
        for pattern in patterns:
            assert not fnmatch.fnmatch(src, pattern.removeprefix("**/")), f".dockerignore {pattern} drops {src}"


def test_the_containers_run_the_image_the_dockerfile_builds() -> None:
    images = {n["image"] for m in manifests() for n in _walk(m.doc) if isinstance(n, dict) and "image" in n}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert images == {f"counterbench:{version}"}, images
