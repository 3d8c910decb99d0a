"""Build the optional Cython accelerators in wildduck/_speedups/.

Every ``wildduck/_speedups/_*.pyx`` becomes an extension module. Set ``WILDDUCK_NO_EXTENSIONS=1`` to build a
pure-Python package; the pure implementations are always present and picked automatically when an extension is
missing (see ``wildduck/_speedups/__init__.py``).
"""

import glob
import os

from setuptools import setup

ext_modules = []
if os.environ.get("WILDDUCK_NO_EXTENSIONS", "") not in ("1", "true", "yes"):
    try:
        from Cython.Build import cythonize
    except ImportError:  # no Cython: pure-Python install
        cythonize = None
    if cythonize is not None:
        sources = sorted(glob.glob(os.path.join("wildduck", "_speedups", "_*.pyx")))
        if sources:
            ext_modules = cythonize(
                sources,
                compiler_directives={
                    "language_level": "3",
                    "boundscheck": False,
                    "wraparound": False,
                    "cdivision": True,
                },
                quiet=True,
            )

setup(ext_modules=ext_modules)
