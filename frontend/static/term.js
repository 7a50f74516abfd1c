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
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    let closedByUs = false;
    const sendSize = () => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
      }
    };
    const refit = () => {
      try { fit.fit(); } catch (e) { /* not visible yet */ }
    };
    refit();
    ws.onopen = () => { onState("open"); refit(); sendSize(); term.focus(); };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        try {
          const msg = JSON.parse(ev.data);
          if (msg.type === "exit") {
            term.write("\r\n\x1b[2m[the shell exited with code " + msg.code + "]\x1b[0m\r\n");
            onState("exited");
          }
        } catch (e) { /* ignore malformed control frames */ }
      } else {
        term.write(new Uint8Array(ev.data));
      }
    };
    ws.onclose = () => { if (!closedByUs) onState("closed"); };
    ws.onerror = () => onState("closed");
    const dataSub = term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
    const binSub = term.onBinary((d) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 255;
      ws.send(b);
    });
    const resizeSub = term.onResize(sendSize);
    const ro = new ResizeObserver(refit);
    ro.observe(el);
    window.addEventListener("resize", refit);
    const handle = {
      term, ws,
      dispose() {
        closedByUs = true;
        ro.disconnect();
        window.removeEventListener("resize", refit);
        dataSub.dispose(); binSub.dispose(); resizeSub.dispose();
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
