// The agents' API as the console calls it, over the shared client (its error shape, SSE reader): the agent key is
// the bearer credential, kept in this tab's sessionStorage only.

import { ApiError, Client } from "../shared/api.js";
import { readEvents } from "../shared/sse.js";

const enc = encodeURIComponent;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class AgentClient extends Client {
  constructor(key, api = location.origin) {
    super({ api, key, storage: sessionStorage });
  }

  // An agent key is itself the credential: no visitor token.
  async token() {
    return this.key;
  }

  // The queue; `handoff`, `mine`, `thumbsDown`: only those sessions; `intent`: the bot's latest turn's.
  queue({ state = "", q = "", intent = "", handoff = false, mine = false, thumbsDown = false, limit = 100 } = {}) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (state) params.append("state", state);
    if (q) params.set("q", q);
    if (intent) params.set("intent", intent);
    if (handoff) params.set("has_handoff", "true");
    if (mine) params.set("mine", "true");
    if (thumbsDown) params.set("thumbs_down", "true");
    return this.send(`/v1/agent/sessions?${params}`);
  }

  replies() {
    return this.send("/v1/agent/replies");
  }

  feedback(id) {
    return this.send(`/v1/sessions/${enc(id)}/feedback`);
  }

  // "Save as test case": the conversation as a scenario file (YAML) and the name the server gives it.
  async scenario(id) {
    const res = await this.send(`/v1/agent/sessions/${enc(id)}/scenario`, { raw: true });
    const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") ?? "")?.[1] ?? "scenario.yaml";
    return { name, blob: await res.blob() };
  }

  take(id, name) {
    return this.send(`/v1/agent/sessions/${enc(id)}/take`, { method: "POST", json: { name } });
  }

  say(id, text, internal) {
    return this.send(`/v1/agent/sessions/${enc(id)}/messages`, { method: "POST", json: { text, internal } });
  }

  handBack(id) {
    return this.send(`/v1/agent/sessions/${enc(id)}/hand-back`, { method: "POST", json: {} });
  }

  close(id) {
    return this.send(`/v1/agent/sessions/${enc(id)}/close`, { method: "POST", json: {} });
  }

  // An order or cart tool for the session's shopper; a change comes back `needs_confirmation`, carried out by the same
  // call with `confirm`.
  action(id, tool, args, confirm = false) {
    return this.send(`/v1/agent/sessions/${enc(id)}/actions`, { method: "POST", json: { tool, arguments: args, confirm } });
  }

  typing(id) {
    return this.send(`/v1/sessions/${enc(id)}/typing`, { method: "POST", json: {} });
  }

  // One logged turn's events (intent, products, done with what the grounding withheld), read to its end.
  async turnEvents(id, turnId) {
    const res = await this.send(`/v1/sessions/${enc(id)}/events`, { headers: { "Last-Event-ID": `${turnId}:0` }, raw: true });
    const out = [];
    for await (const ev of readEvents(res.body)) {
      out.push({ type: ev.event, id: ev.id, data: JSON.parse(ev.data) });
      if (ev.event === "done") break;
    }
    return out;
  }

  // The session stream: every event of the session live, after `after` (an event id) first. A dropped connection is
  // picked up with Last-Event-ID where it stopped; a refusal (4xx) ends it.
  async *follow(id, after, signal) {
    let last = after;
    for (let tries = 0; !signal.aborted; tries++) {
      try {
        const headers = last ? { "Last-Event-ID": last } : {};
        const res = await this.send(`/v1/sessions/${enc(id)}/stream`, { headers, signal, raw: true });
        for await (const ev of readEvents(res.body)) {
          if (ev.id) last = ev.id;
          tries = 0;
          yield { type: ev.event, id: ev.id, data: JSON.parse(ev.data) };
        }
      } catch (e) {
        if (signal.aborted || (e instanceof ApiError && e.status >= 400 && e.status < 500)) throw e;
      }
      yield { type: "reconnecting", data: { attempt: tries + 1 } };
      await sleep(Math.min(5000, 300 * 2 ** tries));
    }
  }
}
