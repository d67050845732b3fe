"""The ``quart-flet`` command: ``run`` with its reload loop (``main``,
``reload``), ``doctor``, finding the app a command names (``target``) and
compressing the web client ahead of time (``prebuild``). It may import
everything; nothing imports it.
"""
