// berth terminal glue: xterm.js + the fit addon + one websocket per terminal handle.
// Binary frames carry terminal bytes both ways; text frames carry JSON control messages.
(function () {
  "use strict";
  function open(el, url, onState) {
    el.innerHTML = "";
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, monospace",
      fontSize: 14,
      scrollback: 5000,
      theme: { background: "#0f172a", foreground: "#e2e8f0", cursor: "#38bdf8" },
    });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(el);
    const enc = new TextEncoder();
    let ws = null;
    let closedByUs = false;
    let exited = false;
    let received = 0;          // output bytes shown; a reconnect resumes after them
    let attempt = 0;
    let retryTimer = null;
    const giveUpAt = () => Date.now() + 11 * 60 * 1000; // a little past the server's grace period
    let deadline = giveUpAt();
    const sendSize = () => {
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
      }
    };
    const refit = () => {
      try { fit.fit(); } catch (e) { /* not visible yet */ }
    };
    refit();
    const connect = () => {
      const target = received > 0 || attempt > 0 ? url + "&offset=" + received : url;
      const sock = new WebSocket(target);
      sock.binaryType = "arraybuffer";
      ws = sock;
      let opened = false;
      sock.onopen = () => {
        opened = true; attempt = 0; deadline = giveUpAt();
        onState("open"); refit(); sendSize(); term.focus();
      };
      sock.onmessage = (ev) => {
        if (typeof ev.data === "string") {
          try {
            const msg = JSON.parse(ev.data);
            if (msg.type === "exit") {
              exited = true;
              term.write("\r\n\x1b[2m[the shell exited with code " + msg.code + "]\x1b[0m\r\n");
              onState("exited");
            }
          } catch (e) { /* ignore malformed control frames */ }
        } else {
          const bytes = new Uint8Array(ev.data);
          received += bytes.length;
          term.write(bytes);
        }
      };
      sock.onclose = (ev) => {
        if (closedByUs || exited || ws !== sock) return;
        // 4001: another connection took this terminal over; reconnecting would take it back.
        if (ev.code === 4001) { onState("taken"); return; }
        if (Date.now() > deadline) { onState("closed"); return; }
        // Reconnect with backoff; the shell waits on the server for the grace period.
        onState("reconnecting");
        const delay = Math.min(10000, 500 * 2 ** Math.min(attempt, 5));
        attempt += 1;
        if (!opened && attempt > 3 && received === 0) { onState("closed"); return; }
        retryTimer = setTimeout(connect, delay);
      };
    };
    connect();
    const dataSub = term.onData((d) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
    const binSub = term.onBinary((d) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 255;
      ws.send(b);
    });
    const resizeSub = term.onResize(sendSize);
    const ro = new ResizeObserver(refit);
    ro.observe(el);
    window.addEventListener("resize", refit);
    const handle = {
      term,
      get ws() { return ws; },
      dispose() {
        closedByUs = true;
        ro.disconnect();
        window.removeEventListener("resize", refit);
        dataSub.dispose(); binSub.dispose(); resizeSub.dispose();
        clearTimeout(retryTimer);
        try { ws.close(1000); } catch (e) { /* already closed */ }
        term.dispose();
      },
    };
    window.berthTerminal = handle; // for end-to-end tests
    return handle;
  }
  function close(h) { if (h) h.dispose(); }
  window.berthTerm = { open, close };
})();
