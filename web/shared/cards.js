// Product cards as the API sends them (ProductCard), rendered as text: title, price, stock, rating, a "why this"
// from the score breakdown in plain words, and an add-to-cart button.

import { h, safeImage } from "./dom.js";

export function formatPrice(price, currency, lang) {
  if (price === null || price === undefined) return "";
  try {
    return new Intl.NumberFormat(lang, { style: "currency", currency: currency || "USD" }).format(price);
  } catch {
    return `${price} ${currency || ""}`.trim();
  }
}

// The breakdown's signals, said in words a shopper understands; the strongest reasons first.
export function reasons(card, t) {
  const b = card.breakdown || {};
  const out = [];
  if (b.image) out.push(t("whyPhoto"));
  if ((b.lexical || 0) >= 0.35 || (b.title || 0) >= 0.5) out.push(t("whyWords"));
  if ((b.dense || 0) >= 0.45) out.push(t("whyMeaning"));
  if ((b.personal || 0) > 0.01) out.push(t("whyHistory"));
  if (card.rating >= 4 && (b.quality || 0) > 0) out.push(t("whyRated", card.rating.toFixed(1)));
  if (!out.length) out.push(t("whyClosest"));
  if (card.in_stock) out.push(t("whyInStock"));
  return out;
}

export function stockText(card, t) {
  if (!card.in_stock) return t("outOfStock");
  return card.stock !== null && card.stock !== undefined && card.stock <= 5 ? t("fewLeft", card.stock) : t("inStock");
}

export function renderCard(card, { t, lang, base, anchor, onAdd }) {
  const src = safeImage(card.image, base);
  const letter = (card.title || "?").trim().charAt(0).toUpperCase();
  const placeholder = () => h("div", { class: "ph", "aria-hidden": "true" }, letter);
  let media = placeholder();
  if (src) {
    media = h("img", { src, alt: "", loading: "lazy", width: 72, height: 72 });
    media.addEventListener("error", () => media.replaceWith(placeholder()), { once: true });
  }
  const rating =
    card.rating !== null && card.rating !== undefined
      ? h(
          "p",
          {
            class: "rating",
            role: "img",
            "aria-label": card.rating_count ? t("rating", card.rating, card.rating_count) : t("ratingNoCount", card.rating),
          },
          `★ ${card.rating.toFixed(1)}`,
          card.rating_count ? ` (${card.rating_count})` : "",
        )
      : null;
  const why = card.breakdown
    ? h("details", { class: "why" }, h("summary", {}, t("whyThis")), h("ul", {}, reasons(card, t).map((r) => h("li", {}, r))))
    : null;
  const add = h(
    "button",
    { type: "button", class: "add", disabled: !card.in_stock, "aria-label": t("addToCartNamed", card.title) },
    t("addToCart"),
  );
  add.addEventListener("click", () => onAdd(card, add));
  return h(
    "li",
    { class: "card", id: anchor, tabindex: "-1" },
    media,
    h(
      "div",
      { class: "info" },
      h("h3", {}, card.title),
      h(
        "p",
        { class: "meta" },
        h("span", { class: "price" }, formatPrice(card.price, card.currency, lang)),
        " · ",
        h("span", { class: card.in_stock ? "stock" : "stock out" }, stockText(card, t)),
      ),
      rating,
      why,
      onAdd ? add : null,
    ),
  );
}
