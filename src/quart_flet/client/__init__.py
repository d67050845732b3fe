"""The Flet web client in the browser: serving its files (``files``), their
compressed variants (``compression``), the preload hints of the first load
(``preload``) and the script that handles a lost connection
(``reconnect``). It imports only the root modules.
"""
