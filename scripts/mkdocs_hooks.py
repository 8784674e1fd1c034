"""mkdocs hooks of the documentation site (mkdocs.yml, `hooks:`), run by `python scripts/build_docs.py`.

mkdocs-jupyter names a notebook page's table of contents and its headings by two different rules: an entry's id leaves
out the heading's code (`Why \\`flock\\`` -> `why`, the heading `why-flock`) and numbers a repeated or code-only heading
(`_1`), so those entries lead nowhere. Each entry is matched, in order, to the next heading whose text holds the entry's
letters in order, and that heading takes the entry's id. Headings of cell outputs that the table leaves out keep theirs.
"""
import re

HEADING = re.compile(r'<h([1-6]) id="([^"]*)"(.*?)</h\1>', re.S)


def _entries(toc) -> list:
    out = []
    for item in toc:
        out += [item, *_entries(item.children)]
    return out


def _letters(s: str) -> str:
    return re.sub(r"[\W_]+", "", re.sub(r"<[^>]+>|&[#\w]+;", "", s)).lower()


def _within(part: str, whole: str) -> bool:
    "`part`'s letters appear in `whole` in order (the entry's text is the heading's with its code left out)."
    rest = iter(whole)
    return all(c in rest for c in part)


def on_page_content(html: str, page, **kwargs) -> str:
    if not page.file.src_uri.endswith(".ipynb"): return html
    heads, ids, i = list(HEADING.finditer(html)), {}, 0
    for entry in _entries(page.toc):
        want = _letters(entry.title)
        j = next((j for j in range(i, len(heads)) if _within(want, _letters(heads[j][3]))), None)
        if j is None: continue
        ids[j], i = entry.id, j + 1
    out, last = [], 0
    for j, m in enumerate(heads):
        if j not in ids: continue
        new = ids[j]
        out += [html[last:m.start()], f'<h{m[1]} id="{new}"' + m[3].replace(f'href="#{m[2]}"', f'href="#{new}"') + f"</h{m[1]}>"]
        last = m.end()
    return "".join(out) + html[last:]
