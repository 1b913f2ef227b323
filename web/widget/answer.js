// One assistant answer in the conversation, built from the turn's events as they arrive (live or replayed):
// streamed text, product cards, actions with Confirm / Cancel, handoff notice, citations as footnotes, thumbs.

import { renderCard } from "../shared/cards.js";
import { h, icon } from "../shared/dom.js";

export class Answer {
  constructor(ui) {
    this.ui = ui;
    this.t = ui.t;
    this.turnId = null;
    this.sessionId = null;
    this.products = [];
    this.confirmations = [];
    this.textNode = document.createTextNode("");
    this.text = h("p", { class: "text" }, this.textNode);
    this.cards = h("ul", { class: "cards", "aria-label": this.t("products"), hidden: true });
    this.extras = h("div", { class: "extras" });
    this.notes = h("ol", { class: "notes", "aria-label": this.t("sources"), hidden: true });
    this.footer = h("div", { class: "extras" });
    // aria-busy while the answer streams: the log announces it once, whole, instead of every token.
    this.el = h(
      "div",
      { class: "msg bot", "aria-busy": "true" },
      h("span", { class: "vh" }, this.t("assistant"), " "),
      this.text,
      this.cards,
      this.extras,
      this.notes,
      this.footer,
    );
  }

  handle(ev) {
    const d = ev.data || {};
    switch (ev.type) {
      case "session":
        this.turnId = d.turn_id;
        this.sessionId = d.session_id;
        break;
      case "products":
        this.showProducts(d.products || []);
        break;
      case "token":
        this.textNode.appendData(d.text || "");
        break;
      case "citation":
        this.cite(d.ids || []);
        break;
      case "action":
        this.action(d);
        break;
      case "handoff":
        this.extras.append(h("p", { class: "note handoff" }, this.t("handoff", d.ticket_id)));
        break;
      case "error":
        this.fail(this.ui.errorText(d.error || {}), this.retry);
        break;
      case "done":
        this.finish(d.status);
        break;
    }
  }

  showProducts(products) {
    this.products.push(...products);
    this.cards.hidden = false;
    for (const card of products) {
      const anchor = `card-${this.turnId || "x"}-${card.id}`;
      const li = renderCard(card, {
        t: this.t,
        lang: this.ui.lang,
        base: this.ui.base,
        anchor,
        onAdd: (c, button) => this.ui.addToCart(c, button),
      });
      this.cards.append(li);
      this.ui.cardElements.set(card.id, li);
      this.ui.titles.set(card.id, card.title);
    }
  }

  cite(ids) {
    for (const ref of ids) {
      const [kind, ...rest] = ref.split(":");
      const id = rest.join(":");
      let item;
      if (kind === "product") {
        const label = this.t("product", this.ui.titles.get(id) || id);
        const link = h("a", { href: "#" }, label);
        link.addEventListener("click", (e) => {
          e.preventDefault();
          const card = this.ui.cardElements.get(id);
          card?.scrollIntoView({ block: "nearest" });
          card?.focus();
        });
        item = link;
      } else if (kind === "policy") {
        const [policy, section] = id.split("#");
        const words = [policy, section].filter(Boolean).map((s) => s.replace(/[-_]/g, " "));
        item = h("span", {}, this.t("policy", words.join(" › ")));
      } else {
        item = h("span", {}, kind === "order" ? this.t("order", id) : ref);
      }
      this.notes.append(h("li", {}, item));
    }
    this.notes.hidden = !this.notes.children.length;
  }

  action(d) {
    if (d.result?.cart) this.ui.cartChanged(d.result.cart);
    if (d.status === "needs_confirmation") {
      const yes = h("button", { type: "button", class: "primary" }, this.t("confirm"));
      const no = h("button", { type: "button" }, this.t("cancel"));
      // The answer's text already asks; the group names what the buttons decide.
      const box = h("div", { class: "confirm row", role: "group", "aria-label": this.t("confirmQ", d.description) }, yes, no);
      // The words the API reads as the answer to its confirmation question ("yes" / "no"), whatever the language.
      yes.addEventListener("click", () => this.ui.answerConfirmation("yes", this.t("confirm")));
      no.addEventListener("click", () => this.ui.answerConfirmation("no", this.t("cancel")));
      this.confirmations.push(yes, no);
      this.extras.append(box);
    } else {
      const key = d.status === "done" ? "done" : "refused";
      this.extras.append(h("p", { class: `note ${key}` }, this.t(key, d.description)));
    }
  }

  closeConfirmations() {
    for (const b of this.confirmations) b.disabled = true;
  }

  fail(message, retry) {
    const box = h("div", { class: "error", role: "alert" }, h("p", {}, message));
    if (retry) box.append(h("button", { type: "button", onclick: () => (box.remove(), retry()) }, this.t("retry")));
    this.extras.append(box);
    this.el.setAttribute("aria-busy", "false");
  }

  stopped() {
    this.extras.append(h("p", { class: "note" }, this.t("stopped")));
    this.el.setAttribute("aria-busy", "false");
  }

  finish(status) {
    this.el.setAttribute("aria-busy", "false");
    if (!this.textNode.data && !this.products.length && !this.extras.children.length) this.text.hidden = true;
    if (status !== "completed" || !this.turnId || !this.sessionId) return;
    const note = h("span", { class: "vh", role: "status" });
    const buttons = ["up", "down"].map((rating) =>
      h("button", {
        type: "button",
        class: `thumb ${rating}`,
        "aria-pressed": "false",
        "aria-label": this.t(rating === "up" ? "helpful" : "notHelpful"),
      }, icon("thumb")),
    );
    buttons.forEach((b, i) =>
      b.addEventListener("click", () => this.ui.rate(this, i ? "down" : "up", buttons, note)),
    );
    this.footer.append(h("div", { class: "thumbs", role: "group", "aria-label": this.t("rate") }, buttons, note));
  }
}
