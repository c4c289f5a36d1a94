"""Triton kernels built at first use, compiled or interpreted as ``TRITON_INTERPRET`` says then.

``@triton.jit`` reads ``TRITON_INTERPRET`` when a function is decorated, i.e. at import.
The kernel modules of :mod:`mmreplk.ops` keep their kernels as plain Python functions
instead and build them with :func:`build_kernels` when first called, once per setting, so
one process can run the interpreter (tests on CPU tensors) and compile for a GPU (ahead of
time, or on a CUDA tensor) side by side.

Triton's own library functions (``tl.zeros``, ``tl.sum``, ...) are ``@triton.jit``
functions too, decorated when ``triton.language`` is imported; an interpreted launch swaps
them for interpreted ones while it runs (as if ``TRITON_INTERPRET=1`` had been set before
that import) and restores them, and whatever the interpreter patched, after. Their member
forms (``x.sum()``) are not swapped: the kernels call the functions.
"""
import contextlib
import functools
import os
import sys
import types
from typing import Callable, Iterator, Optional, Sequence


def interpreting() -> bool:
    """Whether Triton's interpreter is requested now (``TRITON_INTERPRET=1``)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def build_kernels(functions: Sequence[Callable], interpret: Optional[bool] = None
                  ) -> types.SimpleNamespace:
    """``functions`` (plain kernel and helper functions of one module, calling each other by
    name) as Triton JIT functions, or interpreted ones if ``interpret`` (default:
    :func:`interpreting`), by name.

    Each function is rebuilt on a copy of its module's globals in which the names of
    ``functions`` are bound to their built versions: a kernel calls the helpers of its own
    mode, and the module itself is left untouched.
    """
    from triton.runtime.jit import JITFunction

    interpret = interpreting() if interpret is None else interpret
    make = _interpreted_class() if interpret else JITFunction
    scope = dict(functions[0].__globals__)
    built = {}
    for fn in functions:
        copy = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__,
                                  fn.__closure__)
        copy.__qualname__, copy.__doc__ = fn.__qualname__, fn.__doc__
        built[fn.__name__] = scope[fn.__name__] = make(copy)
    return types.SimpleNamespace(**built)


def _language_namespaces() -> list:
    """The loaded ``triton.language`` modules and the classes they define."""
    modules = [module for name, module in list(sys.modules.items()) if module is not None
               and (name == 'triton.language' or name.startswith('triton.language.'))]
    classes = {id(v): v for module in modules for v in vars(module).values()
               if isinstance(v, type) and v.__module__.startswith('triton.language')}
    return modules + list(classes.values())


@contextlib.contextmanager
def _interpreted_language() -> Iterator[None]:
    """The ``@triton.jit`` functions of the loaded ``triton.language`` modules swapped for
    interpreted ones; on exit every attribute of those modules and their classes is put
    back as it was (the interpreter patches them and, for a library function it calls,
    leaves them patched)."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    saved = [(ns, dict(vars(ns))) for ns in _language_namespaces()]
    for ns, attrs in saved:
        if isinstance(ns, types.ModuleType):
            for attr, value in attrs.items():
                if type(value) is JITFunction:
                    setattr(ns, attr, InterpretedFunction(value.fn))
    try:
        yield
    finally:
        for ns, attrs in saved:
            for attr in [a for a in vars(ns) if a not in attrs]:
                delattr(ns, attr)
            for attr, value in attrs.items():
                if vars(ns).get(attr, attrs) is not value:
                    setattr(ns, attr, value)


@functools.lru_cache(maxsize=None)
def _interpreted_class() -> type:
    """Triton's ``InterpretedFunction`` whose launches run under
    :func:`_interpreted_language`."""
    from triton.runtime.interpreter import InterpretedFunction

    class Interpreted(InterpretedFunction):
        def run(self, *args, **kwargs):
            with _interpreted_language():
                return super().run(*args, **kwargs)

    return Interpreted
