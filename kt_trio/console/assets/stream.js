// `/ws/events` with reconnects. The browser attaches the console cookie to the handshake, and its
// `Origin` is this page's, which the gateway checks. A stream that drops is reopened after a
// backoff (0.5 s doubling to 10 s, reset once a connection has stayed up); the time it was down
// is reported, because events published meanwhile are gone (the stream keeps no history).

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10000;
const STABLE_MS = 5000; // up this long: the next drop starts again from the shortest backoff

export class EventStream {
  constructor({ onMessage, onStatus, onGap }) {
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onGap = onGap;
    this.ws = null;
    this.backoff = MIN_BACKOFF_MS;
    this.timer = null;
    this.stopped = true;
    this.downSince = null;
    this.openedAt = null;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/events`;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "console closed");
    }
    this.onStatus("stopped", null);
  }

  connect() {
    this.onStatus(this.downSince === null ? "connecting" : "reconnecting", null);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (error) {
      this.retry(String(error));
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.openedAt = Date.now();
      if (this.downSince !== null) this.onGap(this.downSince, this.openedAt);
      this.downSince = null;
      this.onStatus("live", null);
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret; the gateway only sends JSON
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      if (this.downSince === null) this.downSince = Date.now();
      const why = event.code === 1006 ? "connection lost or refused" : `closed ${event.code}${event.reason ? `: ${event.reason}` : ""}`;
      this.retry(why, event.code);
    });
  }

  retry(why, code = null) {
    if (this.stopped) return;
    if (this.openedAt !== null && Date.now() - this.openedAt > STABLE_MS) this.backoff = MIN_BACKOFF_MS;
    this.openedAt = null;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.onStatus("down", { why, code, retryInMs: wait });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, wait);
  }
}
