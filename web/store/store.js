// The demo store: a product grid from GET /v1/search (as the widget's visitor, so what a shopper views here
// shapes what the assistant ranks first), product views posted to /v1/events, a cart count from the widget.

import { formatPrice, stockText } from "../shared/cards.js";
import { h } from "../shared/dom.js";
import { translator } from "../widget/strings.js";

const t = translator("en");
const grid = document.getElementById("grid");
const state = document.getElementById("state");
const heading = document.getElementById("heading");
const form = document.getElementById("search");
const dialog = document.getElementById("product");

await customElements.whenDefined("shop-assistant");
const widget = document.querySelector("shop-assistant");
const client = await widget.ready;

async function show(q, category) {
  const params = { q: q || category || "gift ideas", k: 24 };
  if (category) params.category = category;
  heading.textContent = q ? `Results for “${q}”` : category ? category[0].toUpperCase() + category.slice(1) : "Featured products";
  state.textContent = "Loading…";
  try {
    const { products } = await client.search(params);
    grid.replaceChildren(...products.map(tile));
    state.textContent = products.length ? `${products.length} products` : "No products found.";
  } catch (e) {
    state.textContent = `Couldn't load products: ${e.message}`;
  }
}

function tile(p) {
  const open = h("button", { type: "button", class: "view" }, "View details");
  open.addEventListener("click", () => view(p));
  return h(
    "li",
    { class: "tile" },
    h("div", { class: "ph", "aria-hidden": "true" }, (p.title || "?").charAt(0)),
    h("h2", {}, p.title),
    h("p", {}, formatPrice(p.price, p.currency, "en"), " · ", stockText(p, t)),
    open,
  );
}

function view(p) {
  document.getElementById("product-title").textContent = p.title;
  const rating = p.rating ? ` · ★ ${p.rating.toFixed(1)}` : "";
  document.getElementById("product-meta").textContent =
    `${formatPrice(p.price, p.currency, "en")} · ${stockText(p, t)}${rating} · ${p.category || ""}`;
  dialog.showModal();
  client.record([{ product_id: p.id, kind: "view" }]).catch(() => {}); // personalization is best effort here
}

function count(cart) {
  const n = cart?.count ?? (cart?.items || []).reduce((s, i) => s + (i.quantity || 1), 0);
  document.getElementById("cart-count").textContent = `${n} item${n === 1 ? "" : "s"}`;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  show(form.q.value.trim(), form.category.value);
});
form.category.addEventListener("change", () => show(form.q.value.trim(), form.category.value));
document.addEventListener("shop-assistant:cart", (e) => count(e.detail));
client.cart().then((r) => count(r.cart ?? r), () => {});
show("", "");
