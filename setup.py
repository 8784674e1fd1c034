"""Packaging for pid_ssl: every field comes from settings.ini (nbdev 2 layout)."""
from configparser import ConfigParser
from pathlib import Path
import re
import shlex
import shutil

import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=["="])
cfg.read(Path(__file__).with_name("settings.ini"))
cfg = cfg["DEFAULT"]

licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable"]
lic = licenses[cfg["license"]]
requirements = shlex.split(cfg.get("requirements", ""))
repro_requirements = shlex.split(cfg.get("repro_requirements", ""))  # the reproduction's notebook stack
slurm_requirements = shlex.split(cfg.get("slurm_requirements", ""))  # pid_ssl_reproduce --launcher slurm
tensorboard_requirements = shlex.split(cfg.get("tensorboard_requirements", ""))  # RunConfig.tensorboard: the optional sink
docs_requirements = shlex.split(cfg.get("docs_requirements", ""))  # scripts/build_docs.py and its browser test
dev_requirements = (shlex.split(cfg.get("dev_requirements", "")) + repro_requirements + slurm_requirements
                    + tensorboard_requirements + docs_requirements)
scripts = [s for s in cfg.get("console_scripts", "").split() if s]
readme = Path(__file__).with_name("README.md")
here = Path(__file__).resolve().parent

# The batch runner's files, shipped in the wheel as package data under pid_ssl/_repro/ with the checkout's layout
# (pid_ssl.paths.repo_dir finds them there); nbs/ and configs/ stay the source, copied when the package is built.
REPRO_FILES = {"configs": "configs/*.yaml", "nbs/experiments": "nbs/experiments/*.ipynb", "nbs/paper": "nbs/paper/*.ipynb"}


class build_py_with_repro_files(build_py):
    "build_py that also copies REPRO_FILES into the built package (never into the source tree)."

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False): return  # an editable install reads them from the checkout
        root = Path(self.build_lib, cfg["lib_path"], "_repro")
        shutil.rmtree(root, ignore_errors=True)  # no stale copies from an earlier build in the same build folder
        for dest, pattern in REPRO_FILES.items():
            out = root / dest
            self.mkpath(str(out))
            for f in sorted(here.glob(pattern)): self.copy_file(str(f), str(out / f.name))


def long_description() -> str:
    "README.md with its relative links made absolute (raw files on the git host): it is also the package index's page."
    if not readme.exists(): return cfg["description"]
    base = f"{cfg['git_url'].rstrip('/')}/raw/{cfg['branch']}/"
    return re.sub(r"(\]\()(?![a-z][a-z0-9+.-]*:|#|/)", lambda m: m.group(1) + base, readme.read_text(encoding="utf-8"))


setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=long_description(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    url=cfg["git_url"],
    license=lic[0],
    keywords=cfg["keywords"].split(),
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"])],
        "Intended Audience :: " + cfg["audience"].title(),
        "License :: " + lic[1],
        "Natural Language :: " + cfg["language"].title(),
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    packages=setuptools.find_packages(include=["pid_ssl", "pid_ssl.*"]),
    include_package_data=True,
    package_data={cfg["lib_name"]: ["py.typed"]},  # PEP 561: type checkers read pid_ssl's annotations
    python_requires=">=" + cfg["min_python"],
    install_requires=requirements,
    extras_require={"repro": repro_requirements, "slurm": slurm_requirements, "tensorboard": tensorboard_requirements,
                    "docs": docs_requirements, "dev": dev_requirements},
    entry_points={
        "console_scripts": scripts,
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    cmdclass={"build_py": build_py_with_repro_files},
    zip_safe=False,
)
