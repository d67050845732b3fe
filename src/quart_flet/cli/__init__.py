"""The ``quart-flet`` command: ``run`` with its reload loop (``main``,
``reload``), ``doctor``, finding the app a command names (``target``) and
compressing the web client ahead of time (``prebuild``). It imports every
room but ``testing``; nothing imports it.
"""
