"""Release basics: one version (settings.ini's) everywhere it shows, CITATION.cff, the changelog, py.typed and the
pre-commit/ruff configuration (ruff, where installed, passes on today's code)."""
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import pid_ssl

ROOT = Path(__file__).resolve().parents[1]
VERSION = configparser.ConfigParser(delimiters=["="])
VERSION.read(ROOT / "settings.ini")
VERSION = VERSION["DEFAULT"]["version"]


@pytest.mark.parametrize("main, prog", [("pid_ssl.commands:train_main", "pid_ssl_train"),
                                        ("pid_ssl.reproduce:main", "pid_ssl_reproduce"),
                                        ("pid_ssl.commands:bench_main", "pid_ssl_bench")])
def test_version_of_every_command(main, prog):
    mod, fn = main.split(":")
    r = subprocess.run([sys.executable, "-c", f"import sys; from {mod} import {fn}\ntry: {fn}(['--version'])\n"
                        "except SystemExit as e: sys.exit(e.code)"], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{prog} {VERSION}\n", ""), r


def test_one_version():
    assert pid_ssl.__version__ == VERSION
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["version"]) == VERSION
    assert f"## {VERSION}" in (ROOT / "CHANGELOG.md").read_text()


def test_citation_cff():
    "CITATION.cff 1.2.0: the required keys of the software and of the paper it accompanies (preferred-citation)."
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"cff-version", "message", "title", "authors"} <= set(cff) and cff["type"] == "software"
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    paper = cff["preferred-citation"]
    assert {"type", "title", "authors"} <= set(paper) and paper["type"] == "conference-paper"
    assert paper["title"] == "More Synergy, Less Redundancy: Exploiting Joint Mutual Information for Self-Supervised Learning"
    assert [a["family-names"] for a in paper["authors"]] == ["Mohamadi", "Doretto", "Adjeroh"]
    assert (paper["year"], paper["start"], paper["end"]) == (2023, 1390, 1394) and "ICIP" in paper["collection-title"]
    assert any(i["value"] == "arXiv:2307.00651" for i in paper["identifiers"])
    for ident in paper["identifiers"]: assert ident["type"] in ("doi", "url", "swh", "other")


def test_typed_package():
    assert (Path(pid_ssl.__file__).parent / "py.typed").is_file()
    assert "py.typed" in (ROOT / "setup.py").read_text() and "pid_ssl/py.typed" in (ROOT / "MANIFEST.in").read_text()


def test_pre_commit_config():
    hooks = [h["id"] for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"] for h in repo["hooks"]]
    assert "ruff" in hooks and "nbdev_clean" in hooks and "ruff-format" not in hooks  # no formatting before the refactor
    if shutil.which("pre-commit"):
        r = subprocess.run(["pre-commit", "validate-config", ".pre-commit-config.yaml"], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install ruff, or the dev extra)")
def test_ruff_passes_today():
    r = subprocess.run(["ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
