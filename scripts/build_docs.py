"""Build pid_ssl's documentation site into `_site/` (static HTML: open it through any HTTP server).

    python scripts/build_docs.py            # the whole site (a paper notebook without a committed executed copy is executed)
    python scripts/build_docs.py --no-paper # such paper notebooks shown unexecuted instead
    python -m http.server -d _site 8000     # then browse http://127.0.0.1:8000/

Two steps, both from this checkout:
1. nbdev's own notebook processing (`nbdev.processors.FilterDefaults`, the step `nbdev_docs` runs before Quarto, with
   the processors settings.ini names) turns each library notebook into its documentation page: `show_doc` tables for
   every exported name, export and hidden cells dropped. `show_doc` runs on the notebook's exported module
   (`pid_ssl.docs.exec_api_docs`, in place of nbdev's `exec_show_docs`, which would run the notebooks' tests). nbdev's
   links to its Quarto site are left out (they point to a site this build does not make).
   A paper notebook's page is the executed copy the runner committed beside its tables and figures
   (results/<tables|figures|reports>/cpu/<name>.ipynb); one without such a copy is executed on the committed results
   (its files go to a temporary folder, so results/ is never written). The experiment notebook is shown as it is
   (executing it trains a network).
2. mkdocs with the Material theme and mkdocs-jupyter renders the pages, the README as the home page, the guides
   under docs/ and each study's generated report, with their tables and figures, and builds the site's search index.
   Chosen over Sphinx + myst-nb for its built-in client-side search and its notebook rendering with no extra
   configuration; its settings are in mkdocs.yml.

Relative links keep their repository paths: a page, figure or table linked from a page is placed at the same path in
the site; a linked repository file that is no page is copied beside it; a linked folder points to the repository on
GitHub. A link to a path that does not exist stops the build with one line per link.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "_docs_src"  # the staged pages, mirroring the repository's paths
SITE = ROOT / "_site"
GUIDES = ["docs/running.md", "docs/reliability.md"]
LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)((?:\s+\"[^\"]*\")?)\)")  # [text](target "title"), ![alt](target)
HREF = re.compile(r"""((?:href|src)=["'])([^"'#][^"']*)(["'])""")  # links in HTML inside markdown
EXTERNAL = ("http://", "https://", "mailto:", "#", "data:")


def git_url() -> str:
    cfg = ConfigParser()
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]["git_url"].rstrip("/")


class Links:
    "Rewrites the relative links of one page, collecting the files to copy and the links that lead nowhere."

    def __init__(self, pages: set[str]):
        self.pages, self.copies, self.broken = pages, set(), []

    def rewrite(self, text: str, page: str, in_notebook: bool) -> str:
        "`text` of the page at repository path `page`, its relative links fixed for the site."
        def target(t: str) -> str:
            if t.startswith(EXTERNAL) or "://" in t: return t
            path, _, frag = t.partition("#")
            rel = os.path.normpath(os.path.join(os.path.dirname(page), path)).replace(os.sep, "/")
            if rel.startswith("../") or not (ROOT / rel).exists():
                self.broken.append(f"{page}: link to {t}: no such file in the repository; fix or remove the link")
                return t
            if (ROOT / rel).is_dir():
                return f"{git_url()}/tree/main/{rel}" + (f"#{frag}" if frag else "")
            if rel in self.pages:  # mkdocs turns .md/.ipynb links of markdown pages into page URLs; notebooks are HTML
                if in_notebook: path = re.sub(r"\.(md|ipynb)$", ".html", path)
                return path + (f"#{frag}" if frag else "")
            self.copies.add(rel)
            return t

        text = LINK.sub(lambda m: f"{m[1]}({target(m[2])}{m[3]})", text)
        return HREF.sub(lambda m: f"{m[1]}{target(m[2])}{m[3]}", text)


def list_breaks(text: str) -> str:
    "A blank line before a list that follows a paragraph line: GitHub starts the list there, Python-Markdown does not."
    out, fence, prev = [], False, ""
    for line in text.split("\n"):
        if line.lstrip().startswith("```"): fence = not fence
        item = re.match(r"\s*([-*+]|\d+\.) ", line)
        if not fence and item and prev.strip() and not re.match(r"\s*([-*+]|\d+\.) |\s*[|>#]", prev) \
                and not prev.startswith(" "):
            out.append("")
        out.append(line)
        prev = line
    return "\n".join(out)


def api_page(src: Path, dst: Path) -> None:
    """A library notebook processed by nbdev for its documentation page, with the processors settings.ini names (the
    same as `nbdev_docs`: `show_doc` from the exported module, `pid_ssl.docs.exec_api_docs`), less the warning cell
    and the links to nbdev's Quarto site."""
    from execnb.nbio import read_nb, write_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults

    procs = [p for p in FilterDefaults().procs() if p.__name__ not in ("insert_warning", "add_links")]
    nb = read_nb(src)
    os.environ["IN_TEST"] = "1"  # as nbdev's docs step sets it
    NBProcessor(nb=nb, procs=procs).process()
    write_nb(nb, dst)


def front_matter_title(dst: Path) -> None:
    "nbdev keeps a notebook's title and summary as Quarto front matter (a raw cell); Material shows them as markdown."
    nb = json.loads(dst.read_text())
    c = nb["cells"][0] if nb["cells"] else None
    if c and c["cell_type"] == "raw" and "".join(c["source"]).startswith("---"):
        meta = {}
        for line in "".join(c["source"]).strip().strip("-").splitlines():
            k, sep, v = line.partition(":")
            if sep: meta[k.strip()] = v.strip().strip("'\"")
        md = f"# {meta.get('title', dst.stem)}\n" + (f"\n> {meta['description']}\n" if meta.get("description") else "")
        nb["cells"][0] = {"cell_type": "markdown", "metadata": {}, "source": md}
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def paper_page(src: Path, dst: Path, out_dir: Path) -> None:
    """A paper notebook executed on the committed results, in this process (execnb, as nbdev runs notebooks: the
    imports are paid once for all of them), its parameters set as papermill sets them; what it writes goes to
    `out_dir`, never to results/."""
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    nb = read_nb(src)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    values = {"results_dir": str(ROOT / "results"), "config": "cpu", "out_dir": str(out_dir)}
    code = nb.cells[i].source + "\n# this build's values\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    cwd = os.getcwd()
    try:
        CaptureShell(path=src.parent).run_all(nb, exc_stop=True, inject_code=code, inject_idx=i)
    finally:
        os.chdir(cwd)

    _rebase_links(nb.cells, out_dir, src.parent)
    write_nb(nb, dst)


def _rebase_links(cells, out_dir: Path, page_dir: Path) -> None:
    "Links the notebook's Markdown outputs name relative to `out_dir` (where it wrote), made relative to `page_dir`."
    def rebase(m):
        t = m[2]
        if t.startswith(EXTERNAL) or "://" in t or os.path.isabs(t): return m[0]
        p = (out_dir / t).resolve()
        return f"{m[1]}({os.path.relpath(p, page_dir) if p.is_relative_to(ROOT) else t}{m[3]})"

    for c in cells:
        for o in c.get("outputs", []):
            if "text/markdown" in o.get("data", {}):
                o["data"]["text/markdown"] = LINK.sub(rebase, "".join(o["data"]["text/markdown"]))


def executed_copy(src: Path, config: str = "cpu") -> Path | None:
    """The runner's executed copy of paper notebook `src` for `config`, committed under results/ beside the files it
    wrote (`pid_ssl_reproduce cpu` makes it); None when there is none."""
    from pid_ssl.layout import paper_out_dir
    p = paper_out_dir(ROOT / "results", config, src.stem) / src.name
    return p if p.is_file() else None


def executed_page(src: Path, executed: Path, dst: Path) -> None:
    "A paper notebook's page from its committed executed copy: its outputs as the runner saved them, links rebased."
    nb = json.loads(executed.read_text(encoding="utf-8"))
    _rebase_links(nb["cells"], executed.parent, src.parent)
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def fix_notebook_links(dst: Path, page: str, links: Links) -> None:
    nb = json.loads(dst.read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            c["source"] = links.rewrite("".join(c["source"]), page, in_notebook=True)
        for o in c.get("outputs", []):
            for mime in ("text/markdown", "text/html"):
                if mime in o.get("data", {}):
                    o["data"][mime] = links.rewrite("".join(o["data"][mime]), page, in_notebook=True)
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def nb_title(path: Path) -> str:
    for c in json.loads(path.read_text())["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(c["source"]), re.M)
            if m: return m[1].strip()
    return path.stem


def build(paper: bool = True, log=print) -> Path:
    "Stage every page under _docs_src/ and render the site into _site/; returns the site's folder."
    t0 = time.time()
    shutil.rmtree(SRC, ignore_errors=True)
    library = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if p.name != "index.ipynb" and not p.name.startswith("_"))
    papers = sorted((ROOT / "nbs/paper").glob("*.ipynb"))
    experiments = sorted((ROOT / "nbs/experiments").glob("*.ipynb"))
    reports = sorted((ROOT / "results/reports").glob("*/report.md"))
    rel = lambda p: p.relative_to(ROOT).as_posix()  # noqa: E731
    pages = {"README.md", *GUIDES, *map(rel, library + papers + experiments + reports)}
    links = Links(pages)

    sys.path.insert(0, str(ROOT))  # this checkout's pid_ssl for show_doc, and for the paper notebooks' kernels
    others = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + others)
    os.environ.setdefault("MPLBACKEND", "Agg")
    for nb in library:
        dst = SRC / rel(nb)
        dst.parent.mkdir(parents=True, exist_ok=True)
        api_page(nb, dst)
        front_matter_title(dst)
    log(f"library notebooks processed by nbdev: {len(library)} ({time.time() - t0:.0f} s)")
    n_ex = 0
    with tempfile.TemporaryDirectory(prefix="pid_ssl_docs_") as tmp:
        for nb in papers:
            dst = SRC / rel(nb)
            dst.parent.mkdir(parents=True, exist_ok=True)
            ex = executed_copy(nb)
            n_ex += ex is not None
            if ex is not None: executed_page(nb, ex, dst)
            elif paper: paper_page(nb, dst, Path(tmp) / nb.stem)
            else: shutil.copy2(nb, dst)
    log(f"paper notebooks: {n_ex} from their committed executed copies, {len(papers) - n_ex} "
        f"{'executed' if paper else 'copied'} ({time.time() - t0:.0f} s)")
    for nb in experiments:
        (SRC / rel(nb)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb, SRC / rel(nb))
    for nb in library + papers + experiments:
        fix_notebook_links(SRC / rel(nb), rel(nb), links)
    for md in ["README.md", *GUIDES, *map(rel, reports)]:
        out = SRC / ("index.md" if md == "README.md" else md)
        out.parent.mkdir(parents=True, exist_ok=True)
        # the home page sits at the site's root like README.md at the repository's: its links need no change of base
        out.write_text(list_breaks(links.rewrite((ROOT / md).read_text(), md, in_notebook=False)))
    if links.broken:
        raise SystemExit("build_docs: error: links that lead nowhere:\n" + "\n".join(sorted(set(links.broken))))
    for f in sorted(links.copies):
        (SRC / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, SRC / f)

    section = lambda nbs: [{nb_title(SRC / rel(p)): rel(p)} for p in nbs]  # noqa: E731
    nav = [{"Home": "index.md"},
           {"Guides": [{"Running on many GPUs or a cluster": GUIDES[0]}, {"Reliability": GUIDES[1]}]},
           {"Reports": [{f"The {p.parent.name} study": rel(p)} for p in reports]},
           {"Library": section(library)}, {"Paper notebooks": section(papers)},
           {"Experiment notebook": section(experiments)}]
    cfg = ROOT / "_docs_src.mkdocs.yml"  # the committed mkdocs.yml plus this build's navigation
    cfg.write_text(f"INHERIT: mkdocs.yml\nnav: {json.dumps(nav, ensure_ascii=False)}\n")  # JSON is YAML
    try:
        r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(cfg)], cwd=ROOT,
                           capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    finally:
        cfg.unlink()
    if r.returncode:
        raise SystemExit(f"build_docs: error: mkdocs build failed:\n{r.stdout}{r.stderr}")
    log(f"site built in {SITE.relative_to(ROOT)}/ ({time.time() - t0:.0f} s)")
    return SITE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-paper", action="store_true", help="show the paper notebooks unexecuted (a faster build)")
    build(paper=not p.parse_args(argv).no_paper)
    return 0


if __name__ == "__main__":
    sys.exit(main())
