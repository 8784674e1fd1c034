"Test helpers with the semantics of fastcore.test's test_eq, test_ne, test_close and test_fail."
from collections.abc import Iterable


def _is_array(x): return type(x).__name__ in ("Tensor", "ndarray", "Parameter") or hasattr(x, "__array__") and not isinstance(x, (str, bytes))


def equals(a, b) -> bool:
    "Equality that also handles tensors, arrays, pandas objects and nested sequences."
    if (a is None) ^ (b is None): return False
    if isinstance(a, type) or isinstance(b, type): return a == b
    if _is_array(a) or _is_array(b):
        import numpy as np
        to = lambda x: x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        try: return bool(np.array_equal(to(a), to(b)))
        except Exception: return False
    if hasattr(a, "equals") and type(a).__module__.startswith("pandas"): return bool(a.equals(b))
    if isinstance(a, (str, bytes, dict, set)) or isinstance(b, (str, bytes, dict, set)): return a == b
    if isinstance(a, Iterable) and isinstance(b, Iterable):
        a, b = list(a), list(b)
        return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b))
    return a == b


def is_close(a, b, eps=1e-5) -> bool:
    "|a - b| < eps elementwise (tensors, arrays, sequences, numbers)."
    if _is_array(a) or _is_array(b): return bool((abs(a - b) < eps).all())
    if isinstance(a, Iterable) or isinstance(b, Iterable): return all(is_close(x, y, eps) for x, y in zip(a, b))
    return abs(a - b) < eps


def test_eq(a, b): assert equals(a, b), f"==:\n{a}\n{b}"
def test_ne(a, b): assert not equals(a, b), f"!=:\n{a}\n{b}"
def test_close(a, b, eps=1e-5): assert is_close(a, b, eps), f"close:\n{a}\n{b}"
def test_is(a, b): assert a is b, f"is:\n{a}\n{b}"


def test_fail(f, msg="", contains="", exc=Exception, args=None, kwargs=None):
    "Pass only when f(*args, **kwargs) raises `exc` whose message contains `contains`."
    try: f(*(args or []), **(kwargs or {}))
    except exc as e:
        assert not contains or contains in str(e), f"{contains!r} not in {str(e)!r}"
        return
    except Exception as e: raise AssertionError(f"Expected {exc.__name__} but got {type(e).__name__}: {e}. {msg}")
    raise AssertionError(f"Expected {exc.__name__} but none raised. {msg}")
