"docments: a function's parameters mapped to the trailing `# comment` on their line (fastcore's convention)."
import inspect
import io
import tokenize


def docments(f) -> dict:
    "{parameter: comment or None} of `f`, plus 'return' (always None here)."
    out = dict.fromkeys(list(inspect.signature(f).parameters) + ["return"])
    try: src = inspect.getsource(f)
    except (OSError, TypeError): return out
    depth, expect, last = 0, False, None
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        s, op = tok.string, tok.type == tokenize.OP
        if op and s in "([{": depth += 1; expect = depth == 1
        elif op and s in ")]}":
            depth -= 1
            if depth == 0: break  # end of the parameter list
        elif depth == 1 and op and s == ",": expect = True
        elif depth == 1 and expect and tok.type == tokenize.NAME and s in out: last, expect = s, False
        elif tok.type == tokenize.COMMENT and last is not None and out[last] is None: out[last] = s.lstrip("#").strip()
    return out
