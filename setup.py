"""The one build step pyproject.toml cannot say: the web chat widget's socket.io client,
which `npm ci` installs into node_modules/ (pinned by package-lock.json), is copied beside
the widget (channels/webchat/static/vendor/) so that an installed omnidesk serves
/widget.js without a checkout. A checkout (and an editable install) reads node_modules/."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CLIENT = Path(__file__).resolve().parent / "node_modules" / "socket.io-client"
VENDOR = Path("channels") / "webchat" / "static" / "vendor"


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        script = CLIENT / "dist" / "socket.io.min.js"
        if not script.is_file():
            raise SystemExit(f"{script} is missing: run `npm ci` before building omnidesk")
        target = Path(self.build_lib) / VENDOR
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(script, target / "socket.io.min.js")
        shutil.copyfile(CLIENT / "LICENSE", target / "socket.io-client.LICENSE")


setup(cmdclass={"build_py": BuildPy})
