"""Root pytest configuration: docstring examples write into pytest's temporary directory.

The examples in ``src/`` call ``tempfile.mkdtemp()`` so that they read as a user would write them;
pointing :mod:`tempfile` at the example's ``tmp_path`` keeps a test run from leaving folders in /tmp.
Only doctests are affected: other tests use ``tmp_path`` directly, and a longer temporary path
could break what creates sockets under it (process pools, Ray).
"""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(autouse=True)
def _doctest_tempdir(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.setattr(tempfile, "tempdir", str(request.getfixturevalue("tmp_path")))
