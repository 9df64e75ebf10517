"""The container image, built from the Dockerfile and run, with podman.

No registry is reachable from this machine, so the pinned python image cannot be
pulled. The image is built on a stand-in named through the Dockerfile's
PYTHON_IMAGE build argument, as a registry mirror's copy would be: Debian
bookworm (the pinned image's Debian) with its Python 3.11 and pip, made here
with debootstrap and imported into podman's store, carrying this machine's
certificate authorities so that pip reaches PyPI from inside the build. Every
instruction of the Dockerfile then runs as written, the .dockerignore deciding
what the builder sees; the image runs under the constraints the Kubernetes
Deployment sets (its numeric user, a read-only root, no capabilities, no
privilege escalation), serving TLS; its health check answers; SIGTERM stops
it cleanly.

podman runs with runc and with explicit rlimits: this machine's cgroups are
mounted in the hybrid layout crun refuses, and a process here cannot raise its
open files or processes beyond the limits it has (podman's defaults ask for
more). Neither flag is the image's business.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storagegw import Client, TlsConfig
from tests.conftest import REPO
from tests.project.test_kubernetes import kubernetes_resources
from tests.servers import free_port
from tests.transport.pki import Pki

TOOLS = ("podman", "runc", "debootstrap")
pytestmark = [
    pytest.mark.skipif(
        any(shutil.which(tool) is None for tool in TOOLS),
        reason="podman, runc or debootstrap missing: scripts/install-test-servers.sh installs them",
    ),
    # One worker builds the image once for all of them.
    pytest.mark.xdist_group("container-image"),
]

BASE = "localhost/storagegw-test-python:3.11-bookworm"
IMAGE = "localhost/storagegw-test:image"
MIRROR = "http://deb.debian.org/debian"
# What the pinned python image provides that a minimal Debian lacks: python and pip.
BASE_PACKAGES = "python3,python3-pip,python-is-python3,ca-certificates"
MACHINE_CAS = Path("/etc/ssl/certs/ca-certificates.crt")
RUN_FLAGS = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
BUILD_TIMEOUT = 900
USER_ID = "10001"


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def _make_base(root: Path) -> None:
    """The stand-in for the pinned python image, imported as BASE."""
    command = ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}"]
    subprocess.run(
        [*command, "bookworm", str(root), MIRROR],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=True,
    )
    if MACHINE_CAS.exists():
        shutil.copyfile(MACHINE_CAS, root / "etc/ssl/certs/ca-certificates.crt")
    archive = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    try:
        subprocess.run(
            # The python image installs into its own interpreter; Debian's pip
            # must be told that this one is the image's to change (PEP 668).
            ["podman", "import", "--change", "ENV PIP_BREAK_SYSTEM_PACKAGES=1", "-", BASE],
            stdin=archive.stdout,
            capture_output=True,
            timeout=BUILD_TIMEOUT,
            check=True,
        )
    finally:
        assert archive.stdout is not None
        archive.stdout.close()
        assert archive.wait(60) == 0
        shutil.rmtree(root)  # some 300 MB, in podman's store now


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _make_base(tmp_path_factory.mktemp("base") / "root")
    try:
        built = podman(
            "build",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--format",
            "docker",  # the OCI format has no HEALTHCHECK
            "--layers=false",
            "--build-arg",
            f"PYTHON_IMAGE={BASE}",
            "--tag",
            IMAGE,
            str(REPO),
            timeout=BUILD_TIMEOUT,
            check=False,
        )
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        yield IMAGE
    finally:
        # --layers=false above: the build leaves no other image behind.
        podman("rmi", "--force", IMAGE, BASE, check=False)


@dataclass
class Container:
    name: str
    grpc_port: int
    http_port: int
    health_port: int
    ca: Path


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[Container]:
    pki = Pki(tmp_path / "tls")
    for path in pki.directory.iterdir():
        path.chmod(0o644)  # read by the image's user, not root
    ports = [free_port() for _ in range(3)]
    name = f"storagegw-test-{tmp_path.name}"
    settings = {
        "GATEWAY_LISTEN": f"127.0.0.1:{ports[0]}",
        "GATEWAY_HTTP_LISTEN": f"127.0.0.1:{ports[1]}",
        "GATEWAY_HEALTH_LISTEN": f"127.0.0.1:{ports[2]}",
        "GATEWAY_TLS_CERT": f"/tls/{pki.cert_file.name}",
        "GATEWAY_TLS_KEY": f"/tls/{pki.key_file.name}",
        "GATEWAY_HEALTHCHECK_CA": f"/tls/{pki.ca_file.name}",
        "STORAGE_BASE_URL": f"https://127.0.0.1:{ports[1]}",
    }
    env = [flag for item in settings.items() for flag in ("--env", "=".join(item))]
    podman(
        "run",
        "--detach",
        "--name",
        name,
        *RUN_FLAGS,
        *_deployment_constraints(),
        "--network",
        "host",
        "--volume",
        f"{pki.directory}:/tls:ro",
        *env,
        image,
    )
    try:
        yield Container(name, ports[0], ports[1], ports[2], pki.ca_file)
    finally:
        podman("rm", "--force", "--volumes", name, check=False)


def _deployment_constraints() -> list[str]:
    """podman's flags for what deploy/kubernetes' Deployment imposes on the
    gateway's container: its user, a read-only root, no capabilities, no
    privilege escalation."""
    pod = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    (gateway,) = [c for c in pod["containers"] if c["name"] == "storagegw"]
    context = {**pod["securityContext"], **gateway["securityContext"]}
    flags = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    if context["readOnlyRootFilesystem"]:
        flags.append("--read-only")
    flags += [f"--cap-drop={capability}" for capability in context["capabilities"]["drop"]]
    if not context["allowPrivilegeEscalation"]:
        flags += ["--security-opt", "no-new-privileges"]
    return flags


def _wait_serving(container: Container) -> None:
    """Until the health-only listener answers SERVING (or the container is gone)."""
    with grpc.insecure_channel(f"127.0.0.1:{container.health_port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            logs = podman("logs", container.name, check=False)
            pytest.fail(f"the container did not serve:\n{logs.stdout}{logs.stderr}")
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _inspect(name: str) -> dict[str, object]:
    (details,) = json.loads(podman("inspect", name).stdout)
    assert isinstance(details, dict)
    return details


def test_the_image_says_who_runs_it_how_it_stops_and_how_it_is_checked(image: str) -> None:
    (details,) = json.loads(podman("image", "inspect", image).stdout)
    config = details["Config"]
    assert config["User"] == f"{USER_ID}:{USER_ID}"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"] == ["storagegw", "serve"]
    check = details["Healthcheck"]
    assert check["Test"] == ["CMD", "python", "-m", "gateway.healthcheck"]
    assert (check["Interval"], check["Timeout"]) == (10 * 10**9, 5 * 10**9)
    assert "/data" in config["Volumes"]
    # The data directory: empty, the image user's alone.
    data = podman(
        "run", "--rm", *RUN_FLAGS, "--entrypoint", "stat", image, "-c", "%u %a", "/data"
    )  # fmt: skip
    assert data.stdout.split() == [USER_ID, "700"]


def test_the_image_serves_tls_as_the_deployment_constrains_it(container: Container) -> None:
    _wait_serving(container)
    # The image's own health check, as Docker or podman would run it.
    health = podman("healthcheck", "run", container.name, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    tls = TlsConfig(ca=str(container.ca))
    with Client(f"localhost:{container.grpc_port}", tls=tls) as client:
        body = bytes(range(256)) * 4096
        client.put_bytes("images/one.bin", body)
        assert client.get_bytes("images/one.bin") == body
        signed = client.sign_url("images/one.bin")
    trusted = ssl.create_default_context(cafile=str(container.ca))
    got = httpx.get(signed.url, verify=trusted, timeout=30)
    assert got.status_code == 200
    assert got.content == body
    owner = podman("exec", container.name, "id", "-u")
    assert owner.stdout.strip() == USER_ID
    # Only the data volume takes writes: the image itself is read-only.
    written = podman("exec", container.name, "touch", "/usr/local/written", check=False)
    assert written.returncode != 0
    assert "Read-only file system" in written.stderr
    stored = podman("exec", container.name, "ls", "/data/default/objects/images")
    assert stored.stdout.split() == ["one.bin"]


def test_sigterm_drains_and_stops_the_container_cleanly(container: Container) -> None:
    _wait_serving(container)
    podman("stop", "--time", "45", container.name, timeout=90)
    state = _inspect(container.name)["State"]
    assert isinstance(state, dict)
    assert state["ExitCode"] == 0, state
    logs = podman("logs", container.name)
    lines = logs.stderr.splitlines()
    messages = [json.loads(line)["message"] for line in lines if line.startswith("{")]
    assert "stopped" in messages, messages[-5:]


def test_its_defaults_refuse_to_serve_the_network_in_the_clear(image: str) -> None:
    # 0.0.0.0 with neither TLS nor authentication: the gateway will not start.
    refused = podman("run", "--rm", *RUN_FLAGS, "--network", "none", image, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "GATEWAY_ALLOW_INSECURE=1" in refused.stderr
