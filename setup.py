"""Package discovery (the rest of the metadata is in pyproject.toml).

The import package `hypolab` lives in services/; every folder under it with an
__init__.py is one of its subpackages, found here rather than listed by hand.
"""

from setuptools import find_packages, setup

setup(packages=["hypolab", *(f"hypolab.{name}" for name in find_packages("services"))])
