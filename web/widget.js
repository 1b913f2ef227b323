// The chat widget: one tag embeds it,
//   <script type="module" src="https://STORE/widget.js" data-key="pk_…"></script>
// or place <shop-assistant data-key="pk_…"></shop-assistant> yourself. The tag's data-* attributes (key, api,
// lang, theme, brand, position, title, shopper-id, shopper-signature, open) are copied onto the element.

import { ShopAssistant } from "./widget/element.js";

if (!customElements.get("shop-assistant")) customElements.define("shop-assistant", ShopAssistant);

const tag = [...document.querySelectorAll("script[data-key]")].find((s) => s.src === import.meta.url);
if (tag && !document.querySelector("shop-assistant")) {
  const el = document.createElement("shop-assistant");
  for (const [k, v] of Object.entries(tag.dataset)) el.dataset[k] = v;
  document.body.append(el);
}
