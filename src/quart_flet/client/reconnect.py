"""The index's reconnect script: what the page does when its Flet WebSocket
is lost, without rebuilding the Flutter client (a notice, a reload once the
server answers again, the sign-in page when the host's auth no longer lets
the browser in). Inline, as flet-web's own index scripts are.

Why and how: docs/discussion/sessions.md, "When the connection is lost".
"""

from __future__ import annotations

import json

from quart_flet.options import FletOptions

__all__ = ["reconnect_script"]

# One notice element, styled inline; __CONFIG__ is JSON with "<" escaped.
_SCRIPT = """<script id="quart-flet-reconnect">
(() => {
  const config = __CONFIG__;
  // a reconnect the user understands
  let lostAt = 0, noticeTimer = 0, reloadTimer = 0, probing = false, leaving = false;
  let notice = null;
  const showNotice = () => {
    if (!config.notice) return;
    if (notice === null) {
      notice = document.createElement("div");
      notice.id = "quart-flet-reconnecting";
      notice.setAttribute("role", "status");
      notice.setAttribute("aria-live", "polite");
      notice.style.cssText = "position:fixed;top:16px;left:50%;transform:translateX(-50%);" +
        "z-index:2147483647;padding:8px 16px;border-radius:4px;background:#323232;" +
        "color:#fff;font:14px/1.4 system-ui,sans-serif;box-shadow:0 2px 6px rgba(0,0,0,.3)";
      notice.textContent = config.notice;
      document.body.appendChild(notice);
    }
    notice.hidden = false;
  };
  const leave = (url) => {
    if (leaving) return;
    leaving = true;
    if (url === null) location.reload(); else location.assign(url);
  };
  const signedOut = () => {
    const next = location.pathname + location.search + location.hash;
    const login = config.loginUrl;
    leave(login === null ? null : login.split("{next}").join(encodeURIComponent(next)));
  };
  // what the page's own URL answers now: "up", "signed-out" or "down"
  const probe = () => fetch(config.base, {
    redirect: "manual", credentials: "same-origin", cache: "no-store",
  }).then((response) => {
    if (response.type === "opaqueredirect" || response.status === 401 ||
        response.status === 403) return "signed-out";
    return response.ok ? "up" : "down";
  }, () => "down");
  const refused = () => {
    if (probing || leaving) return;
    probing = true;
    probe().then((state) => {
      probing = false;
      if (state === "signed-out") signedOut();
    });
  };
  const reloadWhenUp = () => {
    reloadTimer = 0;
    if (!lostAt || leaving) return;
    probe().then((state) => {
      if (!lostAt) return;
      if (state === "signed-out") signedOut();
      else if (state === "up") leave(null);
      else reloadTimer = setTimeout(reloadWhenUp, config.retryMs);
    });
  };
  const lost = () => {
    if (lostAt) return;
    lostAt = Date.now();
    noticeTimer = setTimeout(showNotice, config.noticeDelayMs);
    if (config.reloadMs > 0) reloadTimer = setTimeout(reloadWhenUp, config.reloadMs);
  };
  const back = () => {
    lostAt = 0;
    clearTimeout(noticeTimer);
    clearTimeout(reloadTimer);
    if (notice !== null) notice.hidden = true;
  };
  const isFlet = (url) => {
    try {
      return new URL(url, location.href).pathname.replace(/\\/+$/, "") === config.socketPath;
    } catch (error) {
      return false;
    }
  };
  const Native = window.WebSocket;
  class FletAwareWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (!isFlet(url)) return;
      let opened = false, answered = false;
      this.addEventListener("open", () => { opened = true; });
      this.addEventListener("message", () => {
        if (!answered) { answered = true; back(); }
      });
      this.addEventListener("close", () => {
        if (answered) lost();
        if (!opened) refused();
      });
    }
  }
  window.WebSocket = FletAwareWebSocket;
})();
</script>
"""

#: after the reload limit, how often a page whose server is still down asks again
RETRY_MS = 3000


def reconnect_script(options: FletOptions, base: str, websocket_path: str) -> str:
    """The inline script for the index of the mount point ``base`` whose
    client opens its WebSocket at ``websocket_path``."""
    config = {
        "base": base,
        "socketPath": websocket_path.rstrip("/"),
        "notice": options.reconnect_notice,
        "noticeDelayMs": round(options.reconnect_notice_delay_seconds * 1000),
        "reloadMs": round(options.reconnect_reload_seconds * 1000),
        "retryMs": RETRY_MS,
        "loginUrl": options.reconnect_login_url,
    }
    # inside <script>: no "</script>" or "<!--" can come out of a value
    encoded = json.dumps(config, ensure_ascii=True).replace("<", "\\u003c")
    return _SCRIPT.replace("__CONFIG__", encoded)
