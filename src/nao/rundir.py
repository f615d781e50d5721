"""Run directories: everything a search leaves behind, readable by anyone.

Layout::

    DIR/config.json     the resolved configuration (flags and defaults)
    DIR/manifest.json   package version, git revision, seed, command line, start time
    DIR/journal.jsonl   one JSON object per unique evaluation (see nao.journal)
    DIR/best.json       the best architecture by validation accuracy, with its metrics
    DIR/search.log      the log of the run

>>> import tempfile
>>> rd = RunDir.create(tempfile.mkdtemp() + "/run", {"seed": 0})
>>> sorted(p.name for p in rd.path.iterdir())
['config.json', 'manifest.json']
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nao import __version__
from nao.errors import ConfigError
from nao.results import Result
from nao.spaces.base import SearchSpace


def git_revision() -> str | None:
    """The git commit of the installed source tree, if it is a checkout."""
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclass
class RunDir:
    """A run directory on disk."""

    path: Path

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any]) -> RunDir:
        """Make ``path`` (must not already hold a run) and write config + manifest."""
        path = Path(path)
        if (path / "config.json").exists():
            raise ConfigError(f"--out {path} already holds a run; use --resume {path} or choose another directory")
        path.mkdir(parents=True, exist_ok=True)
        rd = cls(path)
        rd.write_json("config.json", config)
        rd.write_json(
            "manifest.json",
            {
                "nao_version": __version__,
                "git_revision": git_revision(),
                "seed": config.get("seed"),
                "command": sys.argv,
                "python": platform.python_version(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        return rd

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run directory (raises ConfigError if ``path`` is not a run)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"--resume {path}: not a run directory (no config.json)")
        return cls(path)

    def config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "config.json").read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{self.path / 'config.json'}: not valid JSON ({e})") from None

    def write_json(self, name: str, obj: Any) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, self.path / name)

    def write_best(self, best: Result | None, space: SearchSpace, n_evaluated: int) -> None:
        if best is None:
            self.write_json("best.json", {"arch": None, "metrics": {}, "n_evaluated": n_evaluated})
            return
        self.write_json(
            "best.json",
            {
                "arch": space.format(best.arch),
                "space": space.name,
                "tokens": list(best.arch.tokens),
                "metrics": best.metrics,
                "n_evaluated": n_evaluated,
            },
        )
