// The agent console: sign in with an agent key, the queue (waiting first, SLA colours), a conversation live from
// the session stream, take over / reply / internal notes / hand back / close, and each bot turn's trace.
// Every string from the API is rendered as text (shared/dom.js), never as HTML.

import { h } from "../shared/dom.js";
import { AgentClient } from "./api.js";
import { renderTrace } from "./trace.js";

const STATES = { waiting_for_agent: "Waiting", agent: "With an agent", bot: "With the bot", closed: "Closed" };
const QUEUE_EVERY_MS = 3000;
const TYPING_EVERY_MS = 2500;
const $ = (id) => document.getElementById(id);

export function sla(seconds) {
  if (seconds < 60) return ["ok", "on time"];
  if (seconds < 300) return ["warn", "waiting long"];
  return ["late", "over 5 minutes"];
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const ago = (iso) => (iso ? (Date.now() - Date.parse(iso)) / 1000 : 0);

class Console {
  constructor(key, name) {
    this.client = new AgentClient(key);
    this.name = name;
    this.filter = { state: "", q: "", intent: "", handoff: false, mine: false, thumbsDown: false };
    this.canned = [];
    this.current = null; // {id, session, live: Map(turnId -> items), abort}
    this.lastTyping = 0;
  }

  mount() {
    $("sign-in").hidden = true;
    $("who").hidden = false;
    $("who").textContent = `Signed in as ${this.name}`;
    $("sign-out").hidden = false;
    $("sign-out").onclick = () => {
      sessionStorage.removeItem("console:agent");
      location.reload();
    };
    const states = h(
      "select",
      { id: "state-filter" },
      h("option", { value: "" }, "All"),
      Object.entries(STATES).map(([v, label]) => h("option", { value: v }, label)),
    );
    states.addEventListener("change", () => ((this.filter.state = states.value), this.refreshQueue()));
    const search = h("input", { id: "queue-search", type: "search", placeholder: "Words in the conversation" });
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => ((this.filter.q = search.value.trim()), this.refreshQueue()), 250);
    });
    const intent = h("input", { id: "intent-filter", type: "text", placeholder: "e.g. search_products", autocomplete: "off" });
    let intentTimer = 0;
    intent.addEventListener("input", () => {
      clearTimeout(intentTimer);
      intentTimer = setTimeout(() => ((this.filter.intent = intent.value.trim()), this.refreshQueue()), 250);
    });
    const toggle = (key, label) => {
      const box = h("input", { type: "checkbox" });
      box.addEventListener("change", () => ((this.filter[key] = box.checked), this.refreshQueue()));
      return h("label", { class: "check" }, box, ` ${label}`);
    };
    this.queueList = h("ul", { class: "queue", "aria-label": "Sessions" });
    this.queueStatus = h("p", { class: "muted", role: "status" });
    this.convo = h("section", { class: "convo", "aria-labelledby": "convo-title" }, h("h2", { id: "convo-title" }, "Conversation"), h("p", { class: "muted" }, "Open a session from the queue."));
    this.tracePanel = h("section", { class: "trace-panel", "aria-labelledby": "trace-title" }, h("h2", { id: "trace-title" }, "Trace"), h("p", { class: "muted" }, "Choose a bot turn's trace."));
    $("app").append(
      h(
        "div",
        { class: "layout" },
        h(
          "section",
          { class: "queue-panel", "aria-labelledby": "queue-title" },
          h("h2", { id: "queue-title" }, "Queue"),
          h(
            "div",
            { class: "filters" },
            h("label", { for: "state-filter" }, "State"),
            states,
            h("label", { for: "queue-search" }, "Search"),
            search,
            h("label", { for: "intent-filter" }, "Latest intent"),
            intent,
            h("div", { class: "toggles", role: "group", "aria-label": "Only sessions" }, toggle("handoff", "Has handoff"), toggle("mine", "Mine"), toggle("thumbsDown", "Thumbs down")),
          ),
          this.queueStatus,
          this.queueList,
        ),
        this.convo,
        this.tracePanel,
      ),
    );
    this.refreshQueue();
    setInterval(() => this.refreshQueue(), QUEUE_EVERY_MS);
    this.client
      .replies()
      .then(({ replies }) => ((this.canned = replies), this.fillCanned()))
      .catch((e) => console.warn(`no canned replies: ${e.message}`));
  }

  // The canned replies (GET /v1/agent/replies) in the reply box's list.
  fillCanned() {
    if (!this.cannedSelect) return;
    this.cannedSelect.replaceChildren(
      h("option", { value: "" }, this.canned.length ? "Choose a reply…" : "No canned replies"),
      ...this.canned.map((r, i) => h("option", { value: String(i) }, r.title)),
    );
  }

  useCanned() {
    const reply = this.canned[Number(this.cannedSelect.value)];
    if (!reply || this.reply.disabled) return;
    const before = this.reply.value.trimEnd();
    this.reply.value = before ? `${before} ${reply.text}` : reply.text;
    this.cannedSelect.value = "";
    this.reply.focus();
    this.typed();
  }

  async saveScenario() {
    this.alert.textContent = "";
    try {
      const { name, blob } = await this.client.scenario(this.current.id);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      this.stateLine.textContent = `${this.stateLine.textContent.split(" · ")[0]} · saved ${name}`;
    } catch (e) {
      this.alert.textContent = `Couldn't save the test case: ${e.message}`;
    }
  }

  async refreshQueue() {
    let sessions;
    try {
      ({ sessions } = await this.client.queue(this.filter));
    } catch (e) {
      if (e.status === 401 || e.status === 403) return this.signedOut(e.message);
      this.queueStatus.textContent = `Couldn't load the queue: ${e.message}`;
      return;
    }
    this.queueStatus.textContent = sessions.length ? `${sessions.length} sessions` : "No sessions.";
    this.queueList.replaceChildren(...sessions.map((s) => this.queueItem(s)));
  }

  queueItem(s) {
    const waiting = s.state === "waiting_for_agent";
    const [level, words] = sla(s.waiting_s || 0);
    const time = waiting
      ? h("span", { class: `sla ${level}` }, `waiting ${duration(s.waiting_s)} · ${words}`)
      : h("span", { class: "since" }, `${duration(ago(s.since))} ago`);
    const open = h(
      "button",
      { type: "button", class: "open", "aria-current": this.current?.id === s.session_id ? "true" : null },
      `Shopper ${s.shopper_id}`,
      h("span", { class: `state ${s.state}` }, STATES[s.state] ?? s.state),
    );
    open.addEventListener("click", () => this.open(s.session_id));
    return h(
      "li",
      { class: waiting ? `item ${level}` : "item" },
      open,
      h("p", { class: "meta" }, time, s.agent_name ? ` · ${s.agent_name}` : "", ` · ${s.turns} turns`, s.intent ? ` · ${s.intent}` : ""),
      s.handoff ? h("p", { class: "reason" }, `Handoff: ${s.handoff.reason}`) : null,
      s.last_message ? h("p", { class: "last" }, s.last_message) : null,
    );
  }

  signedOut(message) {
    sessionStorage.removeItem("console:agent");
    location.reload();
    console.warn(message);
  }

  // --- the conversation ---------------------------------------------------------------------------------------

  async open(id) {
    this.current?.abort.abort();
    const current = { id, session: null, live: new Map(), marks: new Map(), pending: null, abort: new AbortController() };
    this.current = current;
    this.buildConvo();
    await this.reload();
    this.refreshQueue();
    const turns = current.session?.turns ?? [];
    const after = turns.length ? `${turns[turns.length - 1].turn_id}:0` : null;
    this.follow(current, after);
  }

  buildConvo() {
    this.title = h("h2", { id: "convo-title" }, "Conversation");
    this.stateLine = h("p", { class: "state-line", role: "status" });
    this.handoffBox = h("div", { class: "handoff" });
    this.log = h("ol", { class: "log-list" });
    this.logBox = h("div", { class: "log", role: "log", "aria-label": "Transcript" }, this.log);
    this.typingLine = h("p", { class: "typing muted", "aria-live": "polite" });
    this.alert = h("p", { class: "error", role: "alert" });
    this.takeBtn = h("button", { type: "button", onclick: () => this.act(() => this.client.take(this.current.id, this.name)) }, "Take over");
    this.backBtn = h("button", { type: "button", onclick: () => this.act(() => this.client.handBack(this.current.id)) }, "Hand back to the bot");
    this.closeBtn = h("button", { type: "button", onclick: () => this.act(() => this.client.close(this.current.id)) }, "Close");
    this.saveBtn = h("button", { type: "button", class: "secondary", onclick: () => this.saveScenario() }, "Save as test case");
    this.cannedSelect = h("select", { id: "canned" });
    this.cannedSelect.addEventListener("keydown", (e) => {
      if (e.key === "Enter") (e.preventDefault(), this.useCanned());
    });
    this.cannedBtn = h("button", { type: "button", onclick: () => this.useCanned() }, "Insert");
    this.fillCanned();
    this.reply = h("textarea", { id: "reply", rows: 3 });
    this.reply.addEventListener("input", () => this.typed());
    this.reply.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) (e.preventDefault(), this.form.requestSubmit());
    });
    this.internal = h("input", { id: "internal", type: "checkbox" });
    this.internal.addEventListener("change", () => this.controls());
    this.sendBtn = h("button", { type: "submit" }, "Send");
    this.form = h(
      "form",
      { class: "reply" },
      h("div", { class: "row canned" }, h("label", { for: "canned" }, "Canned reply"), this.cannedSelect, this.cannedBtn),
      h("label", { for: "reply" }, "Reply"),
      this.reply,
      h("div", { class: "row" }, h("label", { class: "check" }, this.internal, " Internal note (agents only)"), this.sendBtn),
    );
    this.form.addEventListener("submit", (e) => (e.preventDefault(), this.send()));
    this.buildActions();
    this.convo.replaceChildren(
      this.title,
      this.stateLine,
      this.handoffBox,
      h("div", { class: "actions", role: "group", "aria-label": "Session actions" }, this.takeBtn, this.backBtn, this.closeBtn, this.saveBtn),
      this.alert,
      this.logBox,
      this.typingLine,
      this.form,
      this.actionsPanel,
    );
  }

  // The owning agent's tools for the shopper: their orders (look up, cancel, start a return) and their cart. A change
  // is proposed first and shown with Confirm / Cancel; what was done reaches the transcript from the session stream.
  buildActions() {
    const field = (id, label, el) => [h("label", { for: id }, label), el];
    this.lookupBtn = h("button", { type: "button", onclick: () => this.lookUpOrders() }, "Look up orders");
    this.ordersList = h("ul", { class: "orders", "aria-label": "The shopper's orders" });
    this.orderSelect = h("select", { id: "action-order" }, h("option", { value: "" }, "Look up the orders first"));
    this.returnReason = h("input", { id: "action-reason", type: "text", autocomplete: "off", value: "Returned by customer service" });
    this.cancelOrderBtn = h("button", { type: "button", onclick: () => this.orderAction("cancel_order") }, "Cancel order");
    this.returnBtn = h("button", { type: "button", onclick: () => this.orderAction("start_return") }, "Start return");
    this.productInput = h("input", { id: "action-product", type: "text", autocomplete: "off", placeholder: "e.g. p1" });
    this.quantityInput = h("input", { id: "action-quantity", type: "number", min: "1", max: "99", value: "1" });
    this.cartBtn = h("button", { type: "submit" }, "Add to cart");
    const cart = h(
      "form",
      { class: "row cart" },
      ...field("action-product", "Product id", this.productInput),
      ...field("action-quantity", "Quantity", this.quantityInput),
      this.cartBtn,
    );
    cart.addEventListener("submit", (e) => (e.preventDefault(), this.cartAction()));
    this.proposalText = h("p", { class: "proposal-text" });
    this.confirmBtn = h("button", { type: "button", onclick: () => this.decide(true) }, "Confirm");
    this.dropBtn = h("button", { type: "button", class: "secondary", onclick: () => this.decide(false) }, "Cancel");
    this.proposalBox = h(
      "div",
      { class: "proposal", role: "group", "aria-label": "Proposed change", hidden: true },
      this.proposalText,
      h("div", { class: "row" }, this.confirmBtn, this.dropBtn),
    );
    this.actionStatus = h("p", { class: "muted", role: "status", "aria-label": "Action result" });
    this.actionsPanel = h(
      "section",
      { class: "agent-actions", "aria-labelledby": "actions-title", hidden: true },
      h("h3", { id: "actions-title" }, "Actions"),
      h("div", { class: "row" }, this.lookupBtn),
      this.ordersList,
      h(
        "div",
        { class: "row order" },
        ...field("action-order", "Order", this.orderSelect),
        ...field("action-reason", "Return reason", this.returnReason),
        this.cancelOrderBtn,
        this.returnBtn,
      ),
      cart,
      this.proposalBox,
      this.actionStatus,
    );
    this.proposal = null;
    this.orders = null;
  }

  async runAction(tool, args, confirm = false) {
    this.alert.textContent = "";
    try {
      const { data } = await this.client.action(this.current.id, tool, args, confirm);
      return data;
    } catch (e) {
      this.alert.textContent = `${tool}: ${e.message}`;
      return null;
    }
  }

  // The action's outcome in words: a proposal waits for Confirm / Cancel; anything else is said in the status line.
  outcome(data) {
    if (!data) return;
    if (data.status === "needs_confirmation") {
      this.proposal = { tool: data.tool, arguments: data.arguments ?? {} };
      this.proposalText.textContent = `Proposed: ${data.description}`;
      this.proposalBox.hidden = false;
      this.confirmBtn.focus();
      return;
    }
    this.actionStatus.textContent = `${data.tool}: ${data.status} — ${data.description}`;
  }

  async lookUpOrders() {
    const data = await this.runAction("order_status", {});
    if (!data) return;
    this.orders = data.result?.orders ?? [];
    this.showOrders(data.status === "done" ? "No orders on this account." : data.description);
    const n = this.orders.length;
    this.actionStatus.textContent = data.status === "done" ? `${n} order${n === 1 ? "" : "s"} found.` : data.description;
  }

  // The looked-up orders, in the list and the Order picker (the choice kept where the order still is).
  showOrders(empty = "No orders on this account.") {
    const orders = this.orders ?? [];
    const chosen = this.orderSelect.value;
    this.ordersList.replaceChildren(
      ...(orders.length
        ? orders.map((o) => h("li", {}, `${o.order_id} · ${o.status} · ${Number(o.total).toFixed(2)} ${o.currency} · ${o.items.map((i) => i.title).join(", ")}`))
        : [h("li", {}, empty)]),
    );
    this.orderSelect.replaceChildren(
      h("option", { value: "" }, orders.length ? "Choose an order…" : "No orders"),
      ...orders.map((o) => h("option", { value: o.order_id }, `${o.order_id} (${o.status})`)),
    );
    if (orders.some((o) => o.order_id === chosen)) this.orderSelect.value = chosen;
    else if (orders.length === 1) this.orderSelect.value = orders[0].order_id;
  }

  async orderAction(tool) {
    const orderId = this.orderSelect.value;
    if (!orderId) return void (this.alert.textContent = "Choose an order first (Look up orders).");
    const args = { order_id: orderId };
    if (tool === "start_return") args.reason = this.returnReason.value.trim() || "Returned by customer service";
    this.outcome(await this.runAction(tool, args));
  }

  async cartAction() {
    const productId = this.productInput.value.trim();
    const quantity = Number(this.quantityInput.value || "1");
    if (!productId) return void (this.alert.textContent = "Enter a product id.");
    this.outcome(await this.runAction("add_to_cart", { product_id: productId, quantity }));
  }

  async decide(confirm) {
    const proposal = this.proposal;
    this.proposal = null;
    this.proposalBox.hidden = true;
    if (!proposal) return;
    if (!confirm) return void (this.actionStatus.textContent = `Not done: ${proposal.tool}.`);
    const data = await this.runAction(proposal.tool, proposal.arguments, true);
    this.outcome(data);
    const changed = data?.result?.order;
    if (changed && this.orders) {
      this.orders = this.orders.map((o) => (o.order_id === changed.order_id ? changed : o));
      this.showOrders();
    }
  }

  async reload() {
    const current = this.current;
    try {
      const session = await this.client.session(current.id);
      if (current !== this.current) return;
      current.session = session;
      for (const t of session.turns) if (t.status !== "in_progress") current.live.delete(t.turn_id);
      this.render();
    } catch (e) {
      this.alert.textContent = `Couldn't load the conversation: ${e.message}`;
    }
  }

  done(turnId) {
    return this.current.session?.turns.some((t) => t.turn_id === turnId && t.status !== "in_progress");
  }

  render() {
    const { session, live } = this.current;
    const control = session.control ?? { state: "bot" };
    this.title.textContent = `Conversation with shopper ${session.shopper_id}`;
    const items = [];
    session.turns.forEach((turn, i) => {
      if (turn.status === "in_progress") return; // its events come from the stream
      if (turn.kind === "person") {
        // Who joined and left is on the stream, not in the turn's record: what this view saw live, else plain words.
        const marks = this.current.marks.get(turn.turn_id) ?? {};
        const agent = turn.messages?.find((m) => (m.from ?? m.sender) === "agent" && m.name)?.name;
        items.push(this.system(marks.joined ?? `${agent ?? "An agent"} took over`));
        for (const m of turn.messages ?? []) items.push(this.message(m));
        for (const a of turn.tool_trace ?? []) if (a.kind === "agent_action") items.push(this.actionItem(a));
        items.push(this.system(marks.left ?? `${agent ?? "The agent"} left the conversation`));
        return;
      }
      if (turn.user_message) items.push(h("li", { class: "msg shopper" }, h("span", { class: "who" }, "Shopper"), turn.user_message));
      const trace = h("button", { type: "button", class: "link", "aria-label": `Trace of turn ${i + 1}` }, `Trace · ${turn.intent ?? "no intent"}`);
      trace.addEventListener("click", () => this.showTrace(turn, i + 1));
      items.push(h("li", { class: "msg bot" }, h("span", { class: "who" }, "Bot"), turn.answer || (turn.status === "cancelled" ? "(cancelled)" : "(no answer)"), h("div", {}, trace)));
    });
    for (const list of live.values()) items.push(...list.map((x) => x.el));
    this.log.replaceChildren(...items);
    this.logBox.scrollTop = this.logBox.scrollHeight;
    this.showControl(control);
  }

  message(m) {
    const from = m.from ?? m.sender;
    if (m.internal) return h("li", { class: "msg note" }, h("span", { class: "who" }, `Note${m.name ? ` · ${m.name}` : ""}`), m.text);
    const who = from === "agent" ? `Agent${m.name ? ` · ${m.name}` : ""}` : "Shopper";
    return h("li", { class: `msg ${from === "agent" ? "agent" : "shopper"}` }, h("span", { class: "who" }, who), m.text);
  }

  // An agent's action: who, the tool, its outcome and what it does; proposals and refusals are marked agents-only.
  actionItem(d) {
    const what = `${d.by ?? "An agent"} · ${d.tool ?? "action"}: ${(d.status ?? "").replace("_", " ")} — ${d.description ?? ""}`;
    return h("li", { class: `msg system action ${d.status ?? ""}` }, d.internal ? `${what} (agents only)` : what);
  }

  system(text) {
    return h("li", { class: "msg system" }, text);
  }

  showControl(control) {
    this.current.control = control;
    const label = STATES[control.state] ?? control.state;
    this.stateLine.textContent = control.state === "agent" ? `${label}: ${control.agent_name}` : label;
    const h0 = control.handoff;
    this.handoffBox.replaceChildren(
      ...(h0
        ? [
            h("p", {}, h("strong", {}, "Handoff"), ` ${h0.ticket_id} · waiting since ${new Date(h0.waiting_since).toLocaleTimeString()}`),
            h("p", {}, `Reason: ${h0.reason}`),
            h("p", { class: "summary" }, h0.summary),
            ...(h0.model_summary ? [h("p", { class: "model-summary" }, h("strong", {}, "Model's summary:"), ` ${h0.model_summary}`)] : []),
          ]
        : []),
    );
    this.controls();
  }

  controls() {
    const c = this.current?.control ?? { state: "bot" };
    const mine = c.state === "agent" && c.agent_name === this.name;
    this.takeBtn.disabled = c.state === "agent";
    this.backBtn.disabled = !mine;
    this.closeBtn.disabled = c.state === "closed" || (c.state === "agent" && !mine);
    const canWrite = this.internal.checked ? c.state === "agent" : mine;
    this.reply.disabled = !canWrite;
    this.sendBtn.disabled = !canWrite;
    this.cannedSelect.disabled = !canWrite;
    this.cannedBtn.disabled = !canWrite;
    this.sendBtn.textContent = this.internal.checked ? "Add note" : "Send";
    this.actionsPanel.hidden = !mine;
    if (!mine && this.proposal) ((this.proposal = null), (this.proposalBox.hidden = true));
  }

  async act(call) {
    this.alert.textContent = "";
    try {
      const control = await call();
      this.showControl({ ...this.current.control, ...control });
      this.refreshQueue();
    } catch (e) {
      this.alert.textContent = e.message;
    }
  }

  async send() {
    const text = this.reply.value.trim();
    if (!text) return;
    this.alert.textContent = "";
    try {
      await this.client.say(this.current.id, text, this.internal.checked);
      this.reply.value = "";
    } catch (e) {
      this.alert.textContent = e.message;
    }
  }

  typed() {
    const c = this.current?.control;
    if (!c || this.internal.checked || c.state !== "agent" || c.agent_name !== this.name) return;
    if (Date.now() - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = Date.now();
    this.client.typing(this.current.id).catch(() => {});
  }

  // The session stream: messages, state changes and bot turns as they happen.
  async follow(current, after) {
    try {
      for await (const ev of this.client.follow(current.id, after, current.abort.signal)) {
        if (current !== this.current) return;
        this.onEvent(ev);
      }
    } catch (e) {
      if (!current.abort.signal.aborted) this.alert.textContent = `The live connection ended: ${e.message}`;
    }
  }

  push(turnId, el) {
    const { live } = this.current;
    if (!live.has(turnId)) live.set(turnId, []);
    live.get(turnId).push({ el });
    this.log.append(el);
    this.logBox.scrollTop = this.logBox.scrollHeight;
  }

  mark(turnId, which, text) {
    const marks = this.current.marks.get(turnId) ?? {};
    marks[which] = text;
    this.current.marks.set(turnId, marks);
    this.push(turnId, this.system(text));
  }

  onEvent(ev) {
    const turnId = ev.id ? ev.id.split(":")[0] : null;
    if (turnId && this.done(turnId)) return; // already in the transcript
    const d = ev.data;
    switch (ev.type) {
      case "state":
        this.showControl({ ...this.current.control, state: d.state, agent_name: d.agent_name, since: d.since });
        break;
      case "message":
        this.typingLine.textContent = "";
        this.push(turnId, this.message(d));
        break;
      case "agent_joined":
        this.mark(turnId, "joined", `${d.name} joined the conversation`);
        break;
      case "agent_left":
        this.mark(turnId, "left", d.to === "closed" ? `${d.name ?? "The agent"} closed the conversation` : `${d.name ?? "The agent"} handed back to the bot`);
        this.reload();
        break;
      case "action":
        this.push(turnId, this.actionItem(d));
        break;
      case "typing":
        if (d.from === "shopper") {
          this.typingLine.textContent = "The shopper is typing…";
          clearTimeout(this.typingTimer);
          this.typingTimer = setTimeout(() => (this.typingLine.textContent = ""), 4000);
        }
        break;
      case "session": {
        const text = h("span", {}, "");
        this.current.pending = text;
        this.push(turnId, h("li", { class: "msg bot pending" }, h("span", { class: "who" }, "Bot (answering)"), text));
        break;
      }
      case "token":
        if (this.current.pending) this.current.pending.textContent += d.text;
        break;
      case "done":
        this.current.pending = null;
        this.reload();
        this.refreshQueue();
        break;
      default:
        break;
    }
  }

  async showTrace(turn, n) {
    const title = h("h2", { id: "trace-title" }, `Trace of turn ${n}`);
    this.tracePanel.replaceChildren(title, h("p", { class: "muted", role: "status" }, "Loading…"));
    let events = [];
    const rated = this.client.feedback(this.current.id).then(
      ({ feedback }) => feedback.filter((f) => f.turn_id === turn.turn_id),
      () => null,
    );
    try {
      events = await this.client.turnEvents(this.current.id, turn.turn_id);
    } catch (e) {
      this.tracePanel.append(h("p", { class: "error" }, `The turn's events couldn't be read: ${e.message}`));
    }
    this.tracePanel.replaceChildren(title, renderTrace(turn, events, await rated));
    title.tabIndex = -1;
    title.focus();
  }
}

function signIn() {
  const form = $("sign-in-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("agent-key").value.trim();
    const name = $("agent-name").value.trim();
    const error = $("sign-in-error");
    if (!key || !name) return void (error.textContent = "Enter the agent key and your name.");
    try {
      await new AgentClient(key).queue({ limit: 1 });
    } catch (err) {
      error.textContent = err.status === 401 || err.status === 403 ? `That key is not accepted here: ${err.message}` : `Couldn't reach the service: ${err.message}`;
      return;
    }
    sessionStorage.setItem("console:agent", JSON.stringify({ key, name }));
    form.reset();
    new Console(key, name).mount();
  });
}

function start() {
  let held = null;
  try {
    held = JSON.parse(sessionStorage.getItem("console:agent"));
  } catch {
    held = null;
  }
  if (held?.key && held?.name) new Console(held.key, held.name).mount();
  else signIn();
}

start();
