"""Serving past one machine: a Triton model repository (``serving.triton``) and a Ray Serve
deployment (``serving.ray``, the ``ray`` extra), both over the package's own pipelines.

Nothing is imported here; import the submodule you use.
"""
