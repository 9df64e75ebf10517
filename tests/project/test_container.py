"""The container image as the Dockerfile and its .dockerignore describe it: the
base pinned, a numeric non-root user, a health check that follows the configured
port, a stop signal and stop timeout that cover the drain, and a build context
that carries only what the image copies.

These tests read what the files say and check it against what the gateway
needs; tests/project/test_container_image.py builds the image and runs it."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from tests.conftest import REPO
from tests.project.test_kubernetes import kubernetes_resources

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# ---------------------------------------------------------------- the Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


DOCKER = instructions(DOCKERFILE.read_text())


def arguments(keyword: str) -> list[str]:
    return [args for name, args in DOCKER if name == keyword]


def test_every_base_image_is_pinned_by_exact_tag_and_digest() -> None:
    # Each stage starts from the one build argument (a mirror's copy can be
    # named), whose default is pinned.
    bases = [args.split()[0] for args in arguments("FROM")]
    assert bases == ["${PYTHON_IMAGE}"] * 2, bases
    (default,) = [args for args in arguments("ARG") if args.startswith("PYTHON_IMAGE=")]
    base = default.partition("=")[2]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*@sha256:[0-9a-f]{64}", base), base
    # ARG before the first FROM: only there does it reach the FROM lines.
    assert DOCKER.index(("ARG", default)) < DOCKER.index(("FROM", arguments("FROM")[0]))


def test_the_gateway_runs_as_a_numeric_non_root_user() -> None:
    (user,) = arguments("USER")
    uid, _, gid = user.partition(":")
    # Numeric: Kubernetes' runAsNonRoot checks the image's user without a passwd file.
    assert uid.isdigit(), user
    assert int(uid) != 0, user
    assert not gid or (gid.isdigit() and int(gid) != 0), user
    manifest = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    assert manifest["securityContext"]["runAsUser"] == int(uid)


def test_the_health_check_asks_the_configured_port() -> None:
    (healthcheck,) = arguments("HEALTHCHECK")
    command = healthcheck.partition("CMD")[2].strip()
    assert command.startswith("[")
    assert yaml.safe_load(command) == ["python", "-m", "gateway.healthcheck"]
    # No port of its own: the probe reads GATEWAY_LISTEN when it runs.
    assert not re.search(r"\b(50051|8080)\b", healthcheck)


def test_a_stop_signal_and_a_stop_timeout_that_cover_the_drain() -> None:
    assert arguments("STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(arguments("ENV"))
    grace = int(re.search(r"GATEWAY_SHUTDOWN_GRACE=(\d+)", env).group(1))  # type: ignore[union-attr]
    # A Dockerfile cannot set the stop timeout: the documented `docker run` does.
    text = DOCKERFILE.read_text()
    timeouts = [int(seconds) for seconds in re.findall(r"--stop-timeout (\d+)", text)]
    assert timeouts
    assert all(timeout > grace for timeout in timeouts), (timeouts, grace)
    readme = (REPO / "README.md").read_text()
    assert f"--stop-timeout {timeouts[0]}" in readme


# ---------------------------------------------------------------- .dockerignore


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regex."""
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token == "**/":
            parts.append("(?:.*/)?")
        elif token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        elif token.startswith("["):
            parts.append(token)
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


def ignored(path: str, rules: str) -> bool:
    """Whether Docker leaves `path` out of the build context: the last pattern that
    matches it, or one of its parent directories, decides."""
    patterns = [
        line.strip() for line in rules.splitlines() if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    decision = False
    for line in patterns:
        negated = line.startswith("!")
        regex = _pattern(line.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            decision = not negated
    return decision


def test_the_ignore_matcher_follows_docker() -> None:
    rules = "*\n!keep/\n**/*.pyc\n"
    assert ignored("data/x", rules)
    assert ignored(".venv", rules)
    assert not ignored("keep/a.py", rules)
    assert ignored("keep/sub/a.pyc", rules)


@pytest.mark.parametrize(
    "path",
    [
        "data/.url-secret", "data/default/objects/report.pdf", ".venv/bin/python",
        "node_modules/.bin/buf", ".git/config", ".pytest_cache/v/x", ".mypy_cache/3.11/x",
        ".ruff_cache/x", ".hypothesis/examples/x", "tests/conftest.py", "bench/results/latest.json",
        "storagegw.egg-info/PKG-INFO", "gateway/__pycache__/server.cpython-311.pyc",
        "gateway/tls/server.key", "gateway/server.pem", "clients/python/storagegw/.env",
        "build/lib/gateway/server.py", "deploy/kubernetes/secret.yaml",
    ],
)  # fmt: skip
def test_the_build_context_leaves_out(path: str) -> None:
    assert ignored(path, DOCKERIGNORE.read_text()), path


def test_the_build_context_holds_what_the_image_copies() -> None:
    rules = DOCKERIGNORE.read_text()
    sources = []
    for args in arguments("COPY"):
        if args.startswith("--from"):
            continue
        sources += shlex.split(args)[:-1]
    assert {"pyproject.toml", "README.md", "gateway", "clients/python/storagegw"} <= set(sources)
    for source in sources:
        files = [source] if (REPO / source).is_file() else [
            str(path.relative_to(REPO)) for path in (REPO / source).rglob("*.py")
        ]  # fmt: skip
        assert files, source
        for path in files:
            if "__pycache__" not in path:
                assert not ignored(path, rules), path
