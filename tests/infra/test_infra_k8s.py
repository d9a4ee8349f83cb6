"""infra/k8s: the kustomize base, checked by schema (kubernetes-validate --strict, every
Kubernetes version from 1.30 on), by the project's own CLI and config code (the flags and
env vars the containers get are real, and resolve to a consistent pod), and by running
the documented Secrets recipe and the credentials init container's own script."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infrakit import (
    K8S,
    POD,
    container,
    container_argv,
    container_env,
    dests,
    kustomization,
    make_secrets,
    manifests,
    memnode_api,
    mount_secret,
    node_config,
    option_strings,
    parse,
    pod_spec,
    port_of,
    resource,
    sidecar_config,
    statefulset,
    subparser,
    tool,
)

try:
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions
except ImportError:  # the schema tests skip; the others do not need it
    kubernetes_validate = None

MIN_VERSION = (1, 30)
NO_VALIDATOR = "kubernetes-validate is not installed (pip install -e '.[infra]')"


def k8s_versions() -> list[str]:
    if kubernetes_validate is None:
        return ["1.30.0"]
    versions = sorted(set(all_versions()), key=lambda v: tuple(int(x) for x in v.split(".")))
    return [v for v in versions if tuple(int(x) for x in v.split(".")[:2]) >= MIN_VERSION]


def validate(doc: dict[str, Any], version: str) -> None:
    """kubernetes-validate --strict (unknown fields are errors)."""
    if kubernetes_validate is None:
        pytest.skip(NO_VALIDATOR)
    kubernetes_validate.validate(doc, version, strict=True)


def ports(c: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c.get("ports", [])}


def mounts(c: dict[str, Any]) -> dict[str, str]:
    """mountPath -> volume name."""
    return {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}


def all_containers() -> list[dict[str, Any]]:
    spec = pod_spec()
    return list(spec.get("initContainers", [])) + list(spec["containers"])


# -- the base ---------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    assert len(listed) == len(set(listed)), "a manifest is listed twice"
    kinds = {d["kind"] for docs in manifests().values() for d in docs}
    assert {"StatefulSet", "Service", "NetworkPolicy", "PodDisruptionBudget",
            "ServiceAccount"} <= kinds


@pytest.mark.parametrize("version", k8s_versions())
def test_manifests_pass_strict_schema_validation(version: str) -> None:
    if kubernetes_validate is None:
        pytest.skip(NO_VALIDATOR)
    checked = 0
    for name, docs in manifests().items():
        for doc in docs:
            try:
                validate(doc, version)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']} against "
                            f"Kubernetes {version}: {exc.message}")
            checked += 1
    assert checked >= 6


def test_strict_validation_catches_an_unknown_field() -> None:
    """The validator really is strict: the StatefulSet with one misspelt field fails."""
    sts = statefulset()
    sts["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    if kubernetes_validate is None:
        pytest.skip(NO_VALIDATOR)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(sts, k8s_versions()[0])


def test_kustomize_builds_the_base() -> None:
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    import yaml

    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    built = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for docs in manifests().values() for d in docs)
    for doc in built:
        validate(doc, k8s_versions()[-1])


# -- the pod: containers, probes, security ----------------------------------------------


def test_sidecar_is_a_native_sidecar_after_the_credentials() -> None:
    spec = pod_spec()
    init = [c["name"] for c in spec["initContainers"]]
    assert init == ["credentials", "sidecar"]
    assert container("sidecar")["restartPolicy"] == "Always"
    assert "restartPolicy" not in container("credentials")
    assert [c["name"] for c in spec["containers"]] == ["node"]
    # a startup probe on the sidecar would hold the node back (the sidecar waits for it)
    assert "startupProbe" not in container("sidecar")


def test_node_probes_ask_the_grpc_health_service_on_the_client_port() -> None:
    node = container("node")
    grpc_port = ports(node)["grpc"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert node[probe]["grpc"]["port"] == grpc_port, probe
    startup = node["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, \
        "the node needs time to load its model and replay its journal"


def test_every_container_is_locked_down() -> None:
    spec = pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for c in all_containers():
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert "add" not in sc["capabilities"], c["name"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], c["name"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for name in ("node", "sidecar"):
        tmp = mounts(container(name)).get("/tmp")
        assert tmp is not None and "emptyDir" in volumes[tmp], f"{name} has no writable /tmp"
    sa = resource("ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == sa["metadata"]["name"]


def test_no_service_links_in_the_memnode_env_namespace() -> None:
    """A Service named memnode would inject MEMNODE_SERVICE_HOST, MEMNODE_PORT... into
    the config's MEMNODE_* namespace unless service links are off."""
    names = {d["metadata"]["name"] for docs in manifests().values() for d in docs
             if d["kind"] == "Service"}
    assert "memnode" in names
    assert pod_spec()["enableServiceLinks"] is False


def test_termination_grace_covers_the_node_shutdown_grace() -> None:
    node, _ = node_config(container_argv(container("node")), container_env(container("node")))
    tgps = pod_spec()["terminationGracePeriodSeconds"]
    assert node.shutdown_grace_seconds > 0
    assert node.shutdown_grace_seconds + 5 <= tgps <= node.shutdown_grace_seconds + 30


def test_services_and_budget_select_the_pods() -> None:
    sts = statefulset()
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    gossip = resource("Service", sts["spec"]["serviceName"])
    assert gossip["spec"]["clusterIP"] == "None"
    assert gossip["spec"]["publishNotReadyAddresses"] is True
    client = resource("Service", "memnode")
    assert client["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert client["spec"].get("clusterIP") != "None"
    for svc in (gossip, client):
        assert svc["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in gossip["spec"]["ports"]] == ["gossip"]
    assert [p["targetPort"] for p in client["spec"]["ports"]] == ["grpc"]
    assert gossip["spec"]["ports"][0]["port"] == ports(container("sidecar"))["gossip"]
    assert client["spec"]["ports"][0]["port"] == ports(container("node"))["grpc"]
    pdb = resource("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    claims = [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]]
    assert claims == ["data"]


def test_network_policy_scopes_each_port() -> None:
    sts = statefulset()
    mesh = sts["spec"]["selector"]["matchLabels"]
    pol = resource("NetworkPolicy")
    assert pol["spec"]["podSelector"]["matchLabels"] == mesh
    assert set(pol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    named = {**ports(container("node")), **ports(container("sidecar"))}
    by_port: dict[str, list[dict[str, Any]]] = {}
    for rule in pol["spec"]["ingress"]:
        for p in rule["ports"]:
            assert p["port"] in named, f"the policy names a port no container has: {p}"
            by_port.setdefault(p["port"], []).extend(rule["from"])
    assert by_port["gossip"] == [{"podSelector": {"matchLabels": mesh}}]
    assert by_port["grpc"] == [{"podSelector": {"matchLabels": {"memnode.io/client": "true"}}}]
    for metrics in ("metrics", "sidecar-metrics"):
        assert all(peer["podSelector"]["matchLabels"] == {"memnode.io/metrics": "true"}
                   for peer in by_port[metrics])
    assert set(by_port) == {"gossip", "grpc", "metrics", "sidecar-metrics"}, \
        "a port open to ingress with no rule scoping it"
    egress_to = [r.get("to") for r in pol["spec"]["egress"]]
    assert [{"podSelector": {"matchLabels": mesh}}] in egress_to
    doc = (K8S / "networkpolicy.yaml").read_text()
    assert 'memnode.io/client: "true"' in doc.split("apiVersion")[0], \
        "the client label is documented in the policy's header"


def test_metrics_annotations_name_the_node_metrics_port() -> None:
    annotations = statefulset()["spec"]["template"]["metadata"]["annotations"]
    node, _ = node_config(container_argv(container("node")), container_env(container("node")))
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == ports(container("node"))["metrics"]
    assert port_of(node.metrics_listen) == ports(container("node"))["metrics"]


# -- the commands are the CLI's ---------------------------------------------------------


@pytest.mark.parametrize("name,command", [("node", "serve"), ("sidecar", "sidecar")])
def test_container_args_and_env_are_real_cli_options(name: str, command: str) -> None:
    c = container(name)
    env = container_env(c)
    argv = container_argv(c)
    assert argv[0] == command
    parser = memnode_api().build_parser(with_serve_flags=True)
    sub = subparser(parser, command)
    known = option_strings(sub)
    flags = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    unknown = flags - known
    assert not unknown, f"{name}: not flags of `memnode {command}`: {sorted(unknown)}"
    args = parse(argv, env)
    assert args.command == command
    # every MEMNODE_* variable is one the CLI reads (an option of the command or the root)
    names = dests(sub) | dests(parser)
    for var in (v for v in env if v.startswith("MEMNODE_")):
        field = var.removeprefix("MEMNODE_").lower()
        assert field in names, f"{name}: {var} is read by nothing"


def test_node_and_sidecar_resolve_to_one_pod() -> None:
    """The configurations the project's own code resolves from each container's args and
    env fit together and fit the manifest (ports, volumes, loopback, preset)."""
    node_c, side_c = container("node"), container("sidecar")
    node, _ = node_config(container_argv(node_c), container_env(node_c))
    args, side = sidecar_config(container_argv(side_c),
                                container_env(side_c))
    credentials = "/run/memnode/federation"
    # node: the kubernetes shape
    assert node.sidecar == "external"
    assert node.listen == f"0.0.0.0:{ports(node_c)['grpc']}"
    assert mounts(node_c)[str(node.data_dir)] == "data", "the data dir is not the PVC"
    assert str(node.metadata_key_file) == f"{credentials}/metadata.key", \
        "the node would hash TEAM metadata with the development key"
    assert mounts(node_c)[credentials] == "credentials"
    # sidecar: reaches the node on the pod's loopback, gossips on its container port
    assert args.node == node.replica_listen
    assert args.node.startswith("127.0.0.1:")
    assert side.preset == "kubernetes"
    assert side.gossip_listen == f"0.0.0.0:{ports(side_c)['gossip']}"
    assert port_of(args.metrics_listen) == ports(side_c)["sidecar-metrics"]
    assert str(side.federation) == credentials
    assert mounts(side_c)[credentials] == "credentials"
    assert "data" not in mounts(side_c).values(), "the sidecar holds no durable state"
    gossip_svc = statefulset()["spec"]["serviceName"]
    ns = POD["metadata.namespace"]
    assert side.advertise == (f"{POD['metadata.name']}.{gossip_svc}.{ns}.svc.cluster.local:"
                              f"{ports(side_c)['gossip']}")
    discover = [a.split("=", 1)[1] for a in container_argv(side_c)
                if a.startswith("--discover=")]
    assert discover == [f"dns:{gossip_svc}.{ns}.svc.cluster.local:{ports(side_c)['gossip']}"]


# -- Secrets: the documented command, and what the pod makes of them --------------------


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    fed, docs, _ = make_secrets(tmp_path_factory.mktemp("secrets"), "--replicas", "3")
    return fed, docs


def secret_names() -> set[str]:
    return {v["secret"]["secretName"] for v in pod_spec()["volumes"] if "secret" in v}


def test_make_secrets_makes_the_secrets_the_pod_mounts(
        secrets: tuple[Path, list[dict[str, Any]]]) -> None:
    fed, docs = secrets
    assert {d["metadata"]["name"] for d in docs} == secret_names()
    by_name = {d["metadata"]["name"]: d for d in docs}
    fed_keys = set(by_name["memnode-federation"]["data"])
    pods = [f"memnode-{i}" for i in range(3)]
    assert fed_keys == {"ca.crt", "denied.txt", "federation.json",
                        *(f"{p}.node.{x}" for p in pods for x in ("crt", "key"))}
    assert set(by_name["memnode-metadata-key"]["data"]) == {"metadata.key"}
    assert base64.b64decode(by_name["memnode-metadata-key"]["data"]["metadata.key"]) == \
        (fed / "metadata.key").read_bytes()
    ca_key = (fed / "ca.key").read_bytes()
    for doc in docs:
        assert doc["metadata"]["namespace"] == "memtest"
        if kubernetes_validate is not None:
            validate(doc, k8s_versions()[0])
        for value in doc["data"].values():
            assert base64.b64decode(value) != ca_key, "the CA's private key is in a Secret"
        assert all("ca.key" not in key for key in doc["data"])


def test_make_secrets_with_kubectl_gives_the_same_secrets(
        tmp_path: Path, secrets: tuple[Path, list[dict[str, Any]]]) -> None:
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: only the script's built-in YAML was checked")
    _, with_kubectl, _ = make_secrets(tmp_path, "--replicas", "3", kubectl=kubectl)
    _, built_in = secrets

    def shape(docs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((d["kind"], d["metadata"]["name"], d["metadata"]["namespace"],
                       sorted(d["metadata"]["labels"].items()), sorted(d["data"]))
                      for d in docs)

    assert shape(with_kubectl) == shape(built_in)


def _run_credentials_init(tmp: Path, docs: list[dict[str, Any]], pod_name: str,
                          ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the credentials init container's own script, its paths moved under tmp and its
    Secret volumes laid out as the kubelet would (fsGroup: group-readable files)."""
    init = container("credentials")
    assert init["command"][:2] == ["/bin/sh", "-ec"]
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    by_name = {d["metadata"]["name"]: d for d in docs}
    for m in init["volumeMounts"]:
        vol = volumes[m["name"]]
        target = tmp / m["mountPath"].lstrip("/")
        if "secret" in vol:
            mount_secret(by_name[vol["secret"]["secretName"]], target,
                         vol["secret"]["defaultMode"])
        else:
            target.mkdir(parents=True)
    env = {k: (str(tmp / v.lstrip("/")) if v.startswith("/") else v)
           for k, v in container_env(init).items()}
    env["POD_NAME"] = pod_name
    done = subprocess.run(["/bin/sh", "-ec", init["args"][0]], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, timeout=60)
    return done, Path(env["CREDENTIALS_DIR"])


def test_credentials_init_container_gives_each_pod_its_own_loadable_credentials(
        tmp_path: Path, secrets: tuple[Path, list[dict[str, Any]]]) -> None:
    _, docs = secrets
    api = memnode_api()
    done, creds = _run_credentials_init(tmp_path, docs, "memnode-2")
    assert done.returncode == 0, done.stderr
    loaded = api.load_node_credentials(creds)  # checks the key modes, the chain, validity
    assert loaded.name == "memnode-2"
    from cryptography import x509

    sans = loaded.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "memnode-2.memnode-gossip.memtest.svc.cluster.local" in sans.get_values_for_type(
        x509.DNSName)
    assert sorted(p.name for p in creds.iterdir()) == sorted(
        ["ca.crt", "denied.txt", "federation.json", "metadata.key", "node.crt", "node.key"])
    assert (creds / "node.key").stat().st_mode & 0o777 == 0o600
    assert (creds / "metadata.key").stat().st_mode & 0o777 == 0o600
    # the reason for the copy: the Secret's own files, as mounted, would be refused
    secret_dir = tmp_path / "run/memnode/secret/federation"
    with pytest.raises(ValueError, match="readable by others"):
        api.load_node_credentials(_as_node_dir(secret_dir, tmp_path / "as-mounted", "memnode-2"))


def _as_node_dir(secret_dir: Path, out: Path, pod: str) -> Path:
    out.mkdir()
    for name in ("ca.crt", "denied.txt", "federation.json"):
        (out / name).symlink_to(secret_dir / name)
    (out / "node.crt").symlink_to(secret_dir / f"{pod}.node.crt")
    (out / "node.key").symlink_to(secret_dir / f"{pod}.node.key")
    return out


def test_credentials_init_container_refuses_a_pod_without_credentials(
        tmp_path: Path, secrets: tuple[Path, list[dict[str, Any]]]) -> None:
    done, creds = _run_credentials_init(tmp_path, secrets[1], "memnode-3")
    assert done.returncode != 0
    assert "no credentials for memnode-3" in done.stderr
    assert "make-secrets.sh" in done.stderr
    assert not (creds / "node.key").exists()


def test_make_secrets_refuses_a_directory_that_is_not_a_federation(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(K8S / "make-secrets.sh"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "memnode federation init" in done.stderr
