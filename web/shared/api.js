// The assistant's HTTP API as a browser calls it: visitor identity, the chat stream (resumed after a dropped
// connection), sessions, feedback, the cart, search. Errors come back as ApiError with the API's error code.

import { readEvents } from "./sse.js";

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
  // The endpoint isn't on this server (an older deployment): the caller falls back or hides the feature.
  get missing() {
    return this.status === 404 && this.code === "not_found" || this.status === 405;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

const seqOf = (id) => Number((id || "").split(":").pop());
const RESUME_TRIES = 6;

export class Client {
  constructor({ api, key, shopperId = null, signature = null, storage = localStorage }) {
    this.api = api.replace(/\/$/, "");
    this.key = key;
    this.shopperId = shopperId;
    this.signature = signature;
    this.storage = storage;
    this.prefix = `shop-assistant:${key}:`;
    this.pending = null;
  }

  load(name) {
    try {
      return JSON.parse(this.storage.getItem(this.prefix + name));
    } catch {
      return null;
    }
  }

  save(name, value) {
    try {
      if (value === null) this.storage.removeItem(this.prefix + name);
      else this.storage.setItem(this.prefix + name, JSON.stringify(value));
    } catch {
      // storage full or blocked: the visitor is anonymous again next time, nothing else breaks
    }
  }

  // The bearer credential: a visitor token from POST /v1/visitors (kept across reloads until it expires); on a
  // server without visitor tokens the page's key is itself the API key.
  async token(fresh = false) {
    const held = this.load("visitor");
    const live = held && (!held.expires_at || Date.parse(held.expires_at) - Date.now() > 60_000);
    if (!fresh && live && (!this.shopperId || held.shopper_id === this.shopperId)) return held.token;
    this.pending ??= this.visit(held).finally(() => (this.pending = null));
    return this.pending;
  }

  async visit(held) {
    const body = { visitor_token: held?.token ?? null, shopper_id: this.shopperId, shopper_signature: this.signature };
    const res = await fetch(`${this.api}/v1/visitors`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Widget-Key": this.key },
      body: JSON.stringify(body),
    });
    if (res.status === 404 || res.status === 405) {
      this.save("visitor", { token: this.key, shopper_id: null, expires_at: null, legacy: true });
      return this.key;
    }
    if (!res.ok) throw await errorOf(res);
    const visitor = await res.json();
    this.save("visitor", visitor);
    return visitor.token;
  }

  // One API call; a refused token is renewed once. `raw`: the Response itself (for streams).
  async send(path, { method = "GET", json, form, headers = {}, signal, raw = false } = {}) {
    for (let attempt = 0; ; attempt++) {
      const init = { method, signal, headers: { ...headers, Authorization: `Bearer ${await this.token(attempt > 0)}` } };
      if (json !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(json);
      } else if (form) init.body = form;
      const res = await fetch(this.api + path, init);
      if (res.status === 401 && attempt === 0) continue;
      if (!res.ok) throw await errorOf(res);
      return raw ? res : res.status === 204 ? null : res.json();
    }
  }

  // One turn's events, in order and each once. A stream that ends before `done` (a dropped connection, a proxy
  // timeout) is picked up with Last-Event-ID where it stopped: the server replays the rest from the turn's log.
  async *chat(message, sessionId, signal) {
    let last = null;
    let session = sessionId;
    for (let tries = 0; ; ) {
      const resume = last !== null;
      try {
        const res = await this.send("/v1/chat", {
          method: "POST",
          json: resume ? { message: "-", session_id: session } : { message, session_id: session || undefined },
          headers: resume ? { "Last-Event-ID": last } : {},
          signal,
          raw: true,
        });
        // 202: a person from customer service holds the session; the message went to them and no bot turn runs.
        if (res.status === 202) {
          yield { type: "delivered", data: await res.json() };
          return;
        }
        for await (const ev of readEvents(res.body)) {
          if (last && ev.id && ev.id.split(":")[0] === last.split(":")[0] && seqOf(ev.id) <= seqOf(last)) continue;
          last = ev.id || last;
          const data = JSON.parse(ev.data);
          if (ev.event === "session") session = data.session_id;
          yield { type: ev.event, id: ev.id, data };
          tries = 0;
          if (ev.event === "done") return;
        }
      } catch (e) {
        if (signal?.aborted || e instanceof ApiError || last === null) throw e;
      }
      if (last === null) throw new ApiError(0, "network", "the connection closed before the answer began");
      if (++tries > RESUME_TRIES) throw new ApiError(0, "network", "the connection keeps dropping");
      yield { type: "reconnecting", data: { attempt: tries } };
      await sleep(Math.min(4000, 250 * 2 ** tries), signal);
    }
  }

  // A logged turn's events after `afterId` (its own session event: "<turn_id>:0"), following it while it runs.
  replay(sessionId, afterId, signal) {
    return this.events(`/v1/sessions/${encodeURIComponent(sessionId)}/events`, afterId, signal);
  }

  // Every event of the session as it happens (a `state` snapshot first), after `afterId` when given.
  sessionStream(sessionId, afterId, signal) {
    return this.events(`/v1/sessions/${encodeURIComponent(sessionId)}/stream`, afterId, signal);
  }

  async *events(path, afterId, signal) {
    const res = await this.send(path, { headers: afterId ? { "Last-Event-ID": afterId } : {}, signal, raw: true });
    for await (const ev of readEvents(res.body)) yield { type: ev.event, id: ev.id, data: JSON.parse(ev.data) };
  }

  typing(sessionId) {
    return this.send(`/v1/sessions/${encodeURIComponent(sessionId)}/typing`, { method: "POST" });
  }

  session(id) {
    return this.send(`/v1/sessions/${encodeURIComponent(id)}`);
  }

  async config() {
    const res = await fetch(`${this.api}/v1/widget/config`, { headers: { "X-Widget-Key": this.key } });
    if (!res.ok) throw await errorOf(res);
    return res.json();
  }

  feedback(sessionId, turnId, rating, comment = "") {
    return this.send("/v1/feedback", { method: "POST", json: { session_id: sessionId, turn_id: turnId, rating, comment } });
  }

  cart() {
    return this.send("/v1/cart");
  }

  addToCart(productId, quantity = 1) {
    return this.send("/v1/cart/items", { method: "POST", json: { product_id: productId, quantity } });
  }

  search(params) {
    return this.send(`/v1/search?${new URLSearchParams(params)}`);
  }

  record(events) {
    return this.send("/v1/events", { method: "POST", json: { events } });
  }

  searchImage(file) {
    const form = new FormData();
    form.append("image", file);
    return this.send("/v1/search/image", { method: "POST", form });
  }
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not the API's error shape (a proxy's page): the status says enough
  }
  const err = body?.error ?? {};
  const code = err.code || (res.status === 404 ? "not_found" : `http_${res.status}`);
  return new ApiError(res.status, code, err.message || res.statusText, Number(res.headers.get("Retry-After")) || 0);
}
