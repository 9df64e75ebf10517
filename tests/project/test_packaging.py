"""The wheel (and so the container image, built from it) holds every package
of the gateway and the client: pyproject.toml lists them one by one."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_package_is_in_the_wheel() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, root in setuptools["package-dir"].items():
        for init in (REPO / root).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / root).parts
            found.add(".".join((name, *parts)))
    assert found - listed == set()
