"""The Flet web client in the browser: serving its files (``files``), their
compressed variants (``compression``), the preload hints of the first load
(``preload``), the script that handles a lost connection (``reconnect``)
and the browser id cookie (``browserid``). It imports only the root
modules.
"""
