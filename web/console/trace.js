// One turn's trace, in one panel: what decided the intent, the slots and where they came from, the references,
// every tool call with its arguments and result, the products shown with their score breakdown, what the
// grounding check repaired and withheld, and the timings (routing, search, the model's first text, the whole turn).
// Everything is rendered as text.

import { h } from "../shared/dom.js";

const BREAKDOWN = ["final", "relevance", "lexical", "dense", "title", "image", "personal", "quality", "diversity"];
const MAX_JSON = 6000; // characters of a result shown; the rest is in GET /v1/sessions/{id}

const num = (v, digits = 2) => (typeof v === "number" ? v.toFixed(digits) : "–");
const ms = (v) => (typeof v === "number" ? `${Math.round(v)} ms` : "–");

function json(value) {
  const text = JSON.stringify(value, null, 2) ?? "null";
  return text.length > MAX_JSON ? `${text.slice(0, MAX_JSON)}\n… (${text.length - MAX_JSON} more characters)` : text;
}

function pairs(rows) {
  return h("dl", { class: "pairs" }, rows.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function section(title, ...body) {
  return h("section", { class: "trace-part", "aria-label": title }, h("h3", {}, title), ...body);
}

function table(caption, heads, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))),
  );
}

// Each product's score breakdown, and how reranking moved it: its place by relevance alone against its place shown.
function productsTable(caption, products) {
  const relevance = (p) => p.breakdown?.relevance ?? p.score ?? 0;
  const byRelevance = [...products].sort((a, b) => relevance(b) - relevance(a));
  const moved = (p, i) => {
    if (typeof p.breakdown?.relevance !== "number") return "–";
    const was = byRelevance.indexOf(p) + 1;
    return was === i + 1 ? `${was} (kept)` : `${was} → ${i + 1}`;
  };
  return table(
    caption,
    ["product", "price", "by relevance → shown", ...BREAKDOWN],
    products.map((p, i) => [
      `${p.title ?? p.id} (${p.id})`,
      typeof p.price === "number" ? p.price.toFixed(2) : "–",
      moved(p, i),
      ...BREAKDOWN.map((k) => (k === "final" ? num(p.breakdown?.final ?? p.score) : num(p.breakdown?.[k]))),
    ]),
  );
}

function thumbs(rated) {
  if (rated === null) return h("p", {}, "The ratings couldn't be read.");
  if (!rated.length) return h("p", {}, "Not rated.");
  return h(
    "ul",
    {},
    rated.map((f) =>
      h("li", { class: `thumb ${f.rating}` }, `Thumbs ${f.rating} from the ${f.given_by} · ${new Date(f.at).toLocaleString()}${f.comment ? `: “${f.comment}”` : ""}`),
    ),
  );
}

function toolCall(entry) {
  const status = entry.ok ? "ok" : `failed${entry.error_kind ? ` (${entry.error_kind})` : ""}`;
  const result = entry.data?.products
    ? productsTable(`${entry.data.count ?? entry.data.products.length} results`, entry.data.products)
    : h("pre", {}, json(entry.ok ? entry.data : entry.error));
  return h(
    "article",
    { class: "tool", "aria-label": `Tool call ${entry.name}` },
    h("h4", {}, `${entry.name} — ${status} · ${ms(entry.duration_ms)}`),
    entry.needs_confirmation ? h("p", { class: "flag" }, "Needs the shopper's confirmation") : null,
    h("p", { class: "label" }, "Arguments"),
    h("pre", {}, json(entry.arguments)),
    h("details", {}, h("summary", {}, "Result"), result),
  );
}

// `rated`: the turn's feedback (GET /v1/sessions/{id}/feedback), null when it couldn't be read.
export function renderTrace(turn, events, rated = []) {
  const intent = events.find((e) => e.type === "intent")?.data;
  const products = events.find((e) => e.type === "products")?.data?.products ?? [];
  const done = events.find((e) => e.type === "done")?.data;
  const trace = turn.tool_trace || [];
  const calls = trace.filter((e) => "arguments" in e);
  const notes = trace.filter((e) => !("arguments" in e));
  const model = notes.find((e) => e.name === "answer_model")?.data;
  const scores = notes.find((e) => e.name === "router_scores")?.data ?? [];
  const runnerUp = scores.find((s) => s.intent !== (intent?.intent ?? turn.intent)) ?? null;
  const whole = turn.completed_at ? Date.parse(turn.completed_at) - Date.parse(turn.created_at) : null;
  const slots = intent?.slots ?? turn.slots ?? {};
  const sources = intent?.slot_sources ?? {};
  // The grounding check: what it repaired in sentences that went out (a wrong price or stock level; on the model
  // call's note), and what it withheld (everything else it listed, dropped).
  const repaired = model?.repaired ?? [];
  const withheld = (done?.withheld ?? []).filter((w) => !repaired.includes(w));
  const routing = notes.find((e) => e.name === "routing")?.data;
  const search = calls.filter((c) => c.name === "search_products");

  return h(
    "div",
    { class: "trace" },
    section(
      "Intent",
      pairs([
        ["intent", turn.intent ?? intent?.intent ?? "–"],
        intent ? ["group", intent.group] : null,
        intent ? ["confidence", num(intent.confidence)] : null,
        intent ? ["decided by", intent.source ?? "–"] : null,
        runnerUp ? ["runner-up", `${runnerUp.intent} (${num(runnerUp.score)})`] : null,
        ["status", turn.status],
      ]),
    ),
    section(
      "Slots",
      Object.keys(slots).length
        ? table("slots", ["slot", "value", "source"], Object.entries(slots).map(([k, v]) => [k, JSON.stringify(v), sources[k] ?? "–"]))
        : h("p", {}, "No slots."),
    ),
    section(
      "References",
      intent?.references?.length ? h("ul", {}, intent.references.map((r) => h("li", {}, r))) : h("p", {}, "None."),
    ),
    section("Tool calls", calls.length ? calls.map(toolCall) : h("p", {}, "No tool was called.")),
    section(
      "Products shown",
      products.length ? productsTable("score breakdown of the cards shown", products) : h("p", {}, "No products shown."),
    ),
    section("Thumbs", thumbs(rated)),
    section(
      "Grounding",
      done || model
        ? [
            repaired.length
              ? [h("p", {}, "Repaired (the sentence went out corrected):"), h("ul", { "aria-label": "Repaired" }, repaired.map((w) => h("li", {}, w)))]
              : h("p", {}, model ? "Nothing repaired." : "No model text to repair."),
            withheld.length
              ? [h("p", {}, "Withheld (dropped):"), h("ul", { "aria-label": "Withheld" }, withheld.map((w) => h("li", {}, w)))]
              : h("p", {}, done ? "Nothing withheld." : "No record of what was withheld (the turn's log has no end)."),
          ]
        : h("p", {}, "No record of the check (the turn's log has no end)."),
    ),
    section(
      "Timings",
      pairs([
        ["whole turn", ms(whole)],
        ["routing", routing ? ms(routing.ms) : "not recorded"],
        ...search.map((c, i) => [search.length > 1 ? `search ${i + 1}` : "search", ms(c.duration_ms)]),
        model ? ["model: first text", ms(model.first_text_ms)] : null,
        model ? ["model: first piece", ms(model.first_piece_ms)] : null,
        model ? ["model: finish", model.finish_reason ?? "–"] : null,
        ...calls.map((c) => [`tool ${c.name}`, ms(c.duration_ms)]),
      ]),
    ),
    notes.length
      ? section(
          "Notes",
          notes.map((n) => h("details", {}, h("summary", {}, `${n.name}${n.ok === false ? " (not accepted)" : ""}`), h("pre", {}, json(n.data ?? n.error)))),
        )
      : null,
  );
}
