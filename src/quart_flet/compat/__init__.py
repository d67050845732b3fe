"""Every private name of flet, Quart, Hypercorn and the standard library
(asyncio above all) that quart-flet touches, and nowhere else: ``flet``,
``quart``, ``hypercorn`` and ``stdlib``, one module each. tests/test_compat.py
fails when an upgrade renames or removes one; tests/test_private_names.py
fails when another module names one itself.

Its modules import no other quart_flet module (so ``runtime/`` can use
``compat.flet`` without reaching Quart), and this file imports nothing.
"""
