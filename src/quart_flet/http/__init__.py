"""The Flet app's HTTP routes other than the web client: where an upload
lands (``uploads``, reading the body with ``uploadbody``) and the response
headers every route gets (``headers``). It imports only the root modules.
"""
