// <shop-assistant>: the launcher and the chat panel in a shadow root, talking to the assistant's API.

import { ApiError, Client } from "../shared/api.js";
import { h, icon } from "../shared/dom.js";
import { Answer } from "./answer.js";
import { Live } from "./live.js";
import { pickLanguage, translator } from "./strings.js";

const HISTORY_REPLAYED = 10; // the last turns re-rendered whole (cards, actions) from their event logs on reload
const ORDINALS = ["first", "second", "third", "fourth", "fifth"];

export class ShopAssistant extends HTMLElement {
  async connectedCallback() {
    if (this.ready) return;
    let resolve;
    this.ready = new Promise((r) => (resolve = r));
    const script = new URL(import.meta.url);
    this.base = new URL(this.dataset.api || new URL("..", script).href, location.href).href;
    this.client = new Client({
      api: this.base,
      key: this.dataset.key || "",
      shopperId: this.dataset.shopperId || null,
      signature: this.dataset.shopperSignature || null,
    });
    const [sheet, config] = await Promise.all([
      loadSheet(new URL("../widget.css", script).href),
      this.client.config().catch(() => ({})),
    ]);
    this.config = { image_search: false, languages: ["en", "es"], default_language: "en", ...config };
    const page = document.documentElement.lang;
    const wanted = [this.dataset.lang, page, ...navigator.languages, this.config.default_language];
    this.lang = pickLanguage(wanted, this.config.languages);
    this.t = translator(this.lang);
    if (this.dataset.brand && CSS.supports("color", this.dataset.brand)) {
      this.style.setProperty("--sa-brand", this.dataset.brand);
    }
    this.build(sheet);
    resolve(this.client);
    if (sessionStorage.getItem(this.client.prefix + "open") === "1" || this.hasAttribute("data-open")) this.open();
    // A hidden page keeps no connection open; it resumes where it stopped when the shopper comes back.
    this.onVisibility = () => (document.hidden ? this.live.stop() : this.loaded && !this.panel.hidden && this.live.start());
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  disconnectedCallback() {
    this.live?.stop();
    if (this.onVisibility) document.removeEventListener("visibilitychange", this.onVisibility);
  }

  build(sheet) {
    const t = this.t;
    const root = this.attachShadow({ mode: "open" });
    if (sheet) root.adoptedStyleSheets = [sheet];
    this.cardElements = new Map();
    this.titles = new Map();
    this.answers = [];
    this.session = this.client.load("session");
    this.live = new Live(this);
    this.launcher = h("button", { type: "button", class: "launcher", "aria-label": t("open"), "aria-expanded": "false" },
      icon("chat"));
    this.launcher.addEventListener("click", () => this.open());
    this.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": t("conversation"), tabindex: "0" });
    this.status = h("p", { class: "status", role: "status" });
    this.chips = h("div", { class: "chips", role: "group", "aria-label": t("suggestions") });
    this.input = h("input", { id: "sa-input", type: "text", autocomplete: "off", maxlength: 2000, placeholder: t("placeholder") });
    this.input.addEventListener("input", () => this.live.shopperTyping());
    this.sendButton = h("button", { type: "submit", class: "send primary" }, t("send"));
    this.stopButton = h("button", { type: "button", class: "stop", hidden: true }, t("stop"));
    this.stopButton.addEventListener("click", () => this.controller?.abort());
    const form = h("form", { class: "composer" },
      h("label", { for: "sa-input", class: "vh" }, t("message")), this.input, this.photoButton(), this.sendButton, this.stopButton);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.input.value.trim();
      if (text && !this.busy) {
        this.input.value = "";
        this.send(text);
      }
    });
    const close = h("button", { type: "button", class: "icon", "aria-label": t("close") }, icon("close"));
    close.addEventListener("click", () => this.close());
    const fresh = h("button", { type: "button", class: "icon", "aria-label": t("newChat") }, icon("plus"));
    fresh.addEventListener("click", () => this.restart());
    const store = this.config.store_name ? h("span", { class: "sub" }, this.config.store_name) : null;
    this.panel = h("section", { class: "panel", role: "dialog", "aria-labelledby": "sa-title", lang: this.lang, hidden: true },
      h("div", { class: "head" }, h("div", { class: "titles" }, h("h2", { id: "sa-title" }, this.dataset.title || t("title")), store), fresh, close),
      this.log, this.status, this.chips, form);
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.close();
      }
    });
    root.append(this.launcher, this.panel);
  }

  photoButton() {
    if (!this.config.image_search) return null;
    const file = h("input", { type: "file", accept: "image/*", class: "vh", tabindex: "-1", "aria-hidden": "true" });
    const button = h("button", { type: "button", class: "icon", "aria-label": this.t("photo") }, icon("camera"));
    button.addEventListener("click", () => file.click());
    file.addEventListener("change", () => file.files[0] && this.searchPhoto(file.files[0]));
    return h("span", {}, file, button);
  }

  open() {
    this.panel.hidden = false;
    this.launcher.hidden = true;
    this.launcher.setAttribute("aria-expanded", "true");
    sessionStorage.setItem(this.client.prefix + "open", "1");
    this.input.focus();
    if (!this.loaded) {
      this.loaded = true;
      this.loadHistory().then((after) => !this.panel.hidden && this.live.start(after));
    } else this.live.start();
  }

  close() {
    this.panel.hidden = true;
    this.launcher.hidden = false;
    this.launcher.setAttribute("aria-expanded", "false");
    sessionStorage.removeItem(this.client.prefix + "open");
    this.live.stop();
    this.launcher.focus();
  }

  restart() {
    this.controller?.abort();
    this.live.reset();
    this.session = null;
    this.client.save("session", null);
    this.log.replaceChildren();
    this.answers = [];
    this.welcome();
    this.input.focus();
  }

  welcome() {
    this.log.append(h("div", { class: "msg bot" }, h("p", { class: "text" }, this.t("welcome"))));
    this.suggest([this.t("start1"), this.t("start2"), this.t("start3")]);
  }

  setStatus(text) {
    this.status.textContent = text || "";
  }

  setBusy(busy) {
    this.busy = busy;
    const focused = this.shadowRoot.activeElement;
    this.sendButton.hidden = busy;
    this.stopButton.hidden = !busy;
    // Keyboard focus follows the button that replaced the one it was on.
    if (busy && focused === this.sendButton) this.stopButton.focus();
    if (!busy && focused === this.stopButton) this.input.focus();
  }

  scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  userMessage(text) {
    const el = h("div", { class: "msg user" }, h("span", { class: "vh" }, this.t("you"), " "), h("p", {}, text));
    this.log.append(el);
    return el;
  }

  newAnswer() {
    for (const a of this.answers) a.closeConfirmations();
    const answer = new Answer(this);
    this.answers.push(answer);
    this.log.append(answer.el);
    return answer;
  }

  send(message, shown = message) {
    this.suggest([]);
    this.sent = this.userMessage(shown);
    return this.run(message, shown);
  }

  answerConfirmation(word, label) {
    if (!this.busy) this.send(word, label);
  }

  async run(message, shown) {
    const answer = this.newAnswer();
    answer.retry = () => (answer.el.remove(), this.run(message, shown));
    this.setBusy(true);
    this.setStatus(this.t("understanding"));
    this.scroll();
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.live.outbox.push(message);
    try {
      for await (const ev of this.client.chat(message, this.session, signal)) {
        if (ev.type === "delivered") this.live.delivered(answer, ev.data);
        else this.onEvent(answer, ev, true);
      }
    } catch (e) {
      if (signal.aborted) {
        answer.stopped();
        this.setStatus(this.t("stopped"));
      } else {
        this.setStatus("");
        answer.fail(this.errorText(e), e.code === "message_too_long" || e.status === 413 ? null : answer.retry);
      }
    } finally {
      const i = this.live.outbox.indexOf(message);
      if (i >= 0) this.live.outbox.splice(i, 1);
      this.setBusy(false);
      this.scroll();
    }
  }

  onEvent(answer, ev, live) {
    const d = ev.data || {};
    if (ev.type === "session") {
      this.session = d.session_id;
      this.client.save("session", d.session_id);
      if (live && !this.panel.hidden) this.live.start();
    }
    if (live) {
      if (ev.type === "intent") this.setStatus(this.t(d.group === "SHOPPING" ? "searching" : "checking"));
      else if (ev.type === "products" || (ev.type === "token" && !answer.writing)) {
        answer.writing = true;
        this.setStatus(this.t("writing"));
      } else if (ev.type === "reconnecting") this.setStatus(this.t("reconnecting"));
      else if (ev.type === "done") this.setStatus("");
    }
    if (ev.type === "products") this.lastCards = (d.products || []).map((p) => p.id);
    answer.handle(ev);
    if (ev.type === "done" && live) this.suggestAfter(answer);
    if (ev.type === "token" || ev.type === "products") this.scroll();
  }

  suggestAfter(answer) {
    if (answer.confirmations.length || !answer.products.length) return this.suggest([]);
    const chips = [this.t("cheaper")];
    if (answer.products.length > 1) chips.push(this.t("compare"));
    chips.push(this.t("tellMore"));
    this.suggest(chips);
  }

  suggest(texts) {
    this.chips.replaceChildren(
      ...texts.map((text) => h("button", { type: "button", class: "chip", onclick: () => !this.busy && this.send(text) }, text)),
    );
  }

  async loadHistory() {
    if (!this.session) return this.welcome();
    this.setStatus(this.t("loading"));
    let session;
    try {
      session = await this.client.session(this.session);
    } catch (e) {
      this.setStatus("");
      if (e.status === 404 || e.status === 403) {
        this.session = null;
        this.client.save("session", null);
        return this.welcome();
      }
      return this.log.append(h("div", { class: "error", role: "alert" }, h("p", {}, this.t("errHistory"))));
    }
    const turns = session.turns || [];
    Object.assign(this.live, { state: session.control?.state || "bot", agent: session.control?.agent_name });
    // A person holding the conversation now: their part comes from its log, replayed by the session stream.
    const held = turns.at(-1)?.kind === "person" && turns.at(-1).status === "in_progress" ? turns.at(-1) : null;
    const replayed = new Set(turns.slice(-HISTORY_REPLAYED).map((t) => t.turn_id));
    const logs = await Promise.all(
      turns.map((turn) =>
        replayed.has(turn.turn_id) && turn.status !== "in_progress" && turn.kind !== "person" ? this.collect(turn) : null,
      ),
    );
    this.setStatus("");
    turns.forEach((turn, i) => {
      if (turn.kind === "person") return turn !== held && this.personMessages(turn); // a customer-service agent's part
      this.userMessage(turn.user_message);
      const answer = this.newAnswer();
      answer.turnId = turn.turn_id;
      answer.sessionId = session.session_id;
      if (turn.status === "in_progress") return this.follow(answer, turn);
      const events = logs[i] || [{ type: "token", data: { text: turn.answer } }, { type: "done", data: { status: turn.status } }];
      for (const ev of events) this.onEvent(answer, ev, false);
    });
    const last = this.answers.at(-1);
    if (last && turns.at(-1)?.status !== "in_progress") this.suggestAfter(last);
    this.scroll();
    return held ? `${held.turn_id}:0` : null;
  }

  // What the shopper and a person from customer service said while the person held the conversation.
  personMessages(turn) {
    for (const m of turn.messages || []) {
      if (m.sender === "shopper") this.userMessage(m.text);
      else this.live.message(m.name, m.text);
    }
  }

  async collect(turn) {
    const events = [];
    try {
      for await (const ev of this.client.replay(this.session, `${turn.turn_id}:0`)) events.push(ev);
      return events;
    } catch {
      return null; // an old turn whose log is gone: its text from the session instead
    }
  }

  // A turn still running when the page reloaded: follow it live from its log.
  async follow(answer, turn) {
    this.setBusy(true);
    this.controller = new AbortController();
    try {
      for await (const ev of this.client.replay(this.session, `${turn.turn_id}:0`, this.controller.signal)) {
        this.onEvent(answer, ev, true);
      }
    } catch (e) {
      if (!this.controller.signal.aborted) answer.fail(this.errorText(e), null);
    } finally {
      this.setBusy(false);
    }
  }

  errorText(e) {
    const t = this.t;
    if (e.status === 429 || e.code === "rate_limited") return t("errRate", e.retryAfter || 10);
    if (e.status === 503 || e.code === "llm_unavailable" || e.code === "starting" || e.code === "unavailable") {
      return t("errUnavailable");
    }
    if (e.status === 413 || e.code === "message_too_long") return t("errTooLong");
    if (!(e instanceof ApiError) || e.status === 0) return t("errNetwork");
    return t("errGeneric", e.message || e.code);
  }

  async addToCart(card, button) {
    button.disabled = true;
    try {
      const result = await this.client.addToCart(card.id);
      this.cartChanged(result?.cart ?? result);
      button.textContent = this.t("added");
    } catch (e) {
      button.disabled = false;
      if (!(e instanceof ApiError && e.missing)) return this.setStatus(this.t("cartFailed"));
      // A server without the cart endpoint: ask in the conversation, naming the card as the shopper would.
      const at = (this.lastCards || []).indexOf(card.id);
      const message = at >= 0 && at < ORDINALS.length ? `add the ${ORDINALS[at]} one to my cart` : `add ${card.title} to my cart`;
      if (!this.busy) this.send(message, this.t("addToCartNamed", card.title));
    }
  }

  cartChanged(cart) {
    this.dispatchEvent(new CustomEvent("shop-assistant:cart", { detail: cart, bubbles: true, composed: true }));
  }

  async rate(answer, rating, buttons, note) {
    try {
      await this.client.feedback(answer.sessionId, answer.turnId, rating);
      buttons.forEach((b, i) => b.setAttribute("aria-pressed", String((i === 0) === (rating === "up"))));
      note.textContent = this.t("thanks");
    } catch {
      note.textContent = this.t("feedbackFailed");
    }
  }

  async searchPhoto(file) {
    const answer = this.newAnswer();
    this.setStatus(this.t("searching"));
    try {
      const found = await this.client.searchImage(file);
      if (found.products?.length) answer.handle({ type: "products", data: found });
      else answer.handle({ type: "token", data: { text: this.t("noResults") } });
      answer.finish("photo");
    } catch (e) {
      answer.fail(this.errorText(e), null);
    }
    this.setStatus("");
    this.scroll();
  }
}

async function loadSheet(href) {
  try {
    const res = await fetch(href);
    const sheet = new CSSStyleSheet();
    await sheet.replace(await res.text());
    return sheet;
  } catch {
    return null;
  }
}
