// The session's live stream while the panel is open: a person from customer service joining, their messages,
// actions and typing, and leaving. One connection per open widget, resumed with Last-Event-ID after a drop.

import { h } from "../shared/dom.js";

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

const TYPING_SHOWN_MS = 6000; // an agent's typing indicator lasts this long after their last keystroke event
const TYPING_SENT_MS = 3000; // the shopper's typing goes to the agent at most this often

export class Live {
  constructor(ui) {
    this.ui = ui;
    this.reset();
  }

  reset() {
    this.stop();
    this.last = null; // the last logged event seen: where a reconnection resumes
    this.seen = new Set();
    this.state = "bot";
    this.agent = null;
    this.sentTyping = 0;
    this.outbox = []; // messages this panel is sending: on screen already when the stream brings them back
  }

  // Follows the session from now (or after `after`, an event id); nothing when already following or no session yet.
  start(after = null) {
    if (this.controller || !this.ui.session) return;
    this.last ??= after;
    this.controller = new AbortController();
    this.follow(this.ui.session, this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
    this.typing(null);
  }

  async follow(session, signal) {
    for (let tries = 0; !signal.aborted; tries++) {
      try {
        for await (const ev of this.ui.client.sessionStream(session, this.last, signal)) {
          // `typing` and the opening snapshot are live only: an id the reader carries over is not theirs.
          if (ev.id && ev.type !== "typing" && ev.type !== "state") {
            if (this.seen.has(ev.id)) continue;
            this.seen.add(ev.id);
            this.last = ev.id;
            tries = 0;
          }
          this.handle(ev);
        }
      } catch (e) {
        // A session that is gone or not this shopper's has nothing to follow; anything else is retried.
        if (signal.aborted || [400, 403, 404].includes(e.status)) return;
      }
      // Backoff with jitter, so replicas coming back are not met by every widget at once.
      await sleep(Math.min(30_000, 500 * 2 ** Math.min(tries, 6)) * (0.5 + Math.random() / 2), signal);
    }
  }

  handle(ev) {
    const d = ev.data || {};
    const ui = this.ui;
    switch (ev.type) {
      case "state":
        this.state = d.state;
        this.agent = d.agent_name;
        break;
      case "agent_joined":
        this.state = "agent";
        this.agent = d.name;
        this.notice(ui.t("joined", d.name || ui.t("someone")));
        break;
      case "agent_left":
        this.state = d.to;
        this.typing(null);
        this.notice(ui.t(d.to === "closed" ? "closedBy" : "left", d.name || ui.t("someone")));
        break;
      case "message":
        if (d.from === "agent" && !d.internal) {
          this.typing(null);
          this.message(d.name, d.text);
        } else if (d.from === "shopper") {
          const mine = this.outbox.indexOf(d.text);
          if (mine >= 0) this.outbox.splice(mine, 1);
          else ui.userMessage(d.text); // replayed after a reload, or sent from another tab
        }
        break;
      case "action":
        if (d.by && d.status !== "needs_confirmation") this.action(d);
        break;
      case "typing":
        if (d.from === "agent") this.typing(d.name || this.agent);
        break;
    }
  }

  // A person from customer service: their message under their name, an action they took, them joining or leaving.
  message(name, text) {
    const t = this.ui.t;
    this.show(h("div", { class: "msg agent" }, h("p", { class: "name" }, name || t("someone")), h("p", { class: "text" }, text)));
  }

  action(d) {
    if (d.result?.cart) this.ui.cartChanged(d.result.cart);
    const key = d.status === "done" ? "done" : "refused";
    this.show(h("div", { class: "msg agent" }, h("p", { class: "name" }, d.by), h("p", { class: `note ${key}` }, this.ui.t(key, d.description))));
  }

  notice(text) {
    this.show(h("p", { class: "notice" }, text));
  }

  show(el) {
    this.ui.log.append(el);
    this.ui.scroll();
  }

  // POST /v1/chat answered 202: the message went to the person who holds the conversation, so there is no answer
  // from the assistant to wait for.
  delivered(answer, d) {
    const ui = this.ui;
    this.seen.add(d.event_id); // on screen already, whether the stream brings it before or after this reply
    answer.el.remove();
    ui.answers.pop();
    ui.setStatus("");
    ui.sent?.append(h("span", { class: "sent" }, ui.t("sent")));
    this.state = "agent";
    this.agent = d.agent_name || this.agent;
    this.start();
  }

  // The agent's typing in the status line: set once when it starts (a polite announcement, not one per
  // keystroke), cleared when their message arrives or they stop.
  typing(name) {
    clearTimeout(this.typingTimer);
    const text = name ? this.ui.t("typing", name) : "";
    if (name) this.typingTimer = setTimeout(() => this.typing(null), TYPING_SHOWN_MS);
    else if (!this.typingShown) return;
    if (this.typingShown !== text) this.ui.setStatus(text);
    this.typingShown = text;
  }

  // The shopper types: the agent who holds the session hears of it, at most every few seconds.
  shopperTyping() {
    const now = Date.now();
    if (this.state !== "agent" || !this.ui.session || now - this.sentTyping < TYPING_SENT_MS) return;
    this.sentTyping = now;
    this.ui.client.typing(this.ui.session).catch(() => {});
  }
}
