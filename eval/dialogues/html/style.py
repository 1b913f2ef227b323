"""The page's inline CSS (light and dark) and the few lines of JS behind the "only the failed scenarios"
filter; the script's hash goes into the page's Content-Security-Policy.
"""

SCRIPT = """
const box = document.getElementById("only-failed");
document.getElementById("filter").hidden = false;
box.addEventListener("change", () => {
  for (const node of document.querySelectorAll("[data-status]"))
    node.hidden = box.checked && node.dataset.status !== "failed";
});
"""

CSS = """
:root { --fg: #1a1a1a; --bg: #fff; --muted: #555; --line: #ccc; --panel: #f4f5f7; --pass: #17643a;
  --fail: #a8200d; --skip: #555; --link: #0b57d0; color-scheme: light dark; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8e8; --bg: #16181c; --muted: #b0b0b0; --line: #444;
  --panel: #23262b; --pass: #7ddc9f; --fail: #ff9b85; --skip: #c0c0c0; --link: #8ab4f8; } }
body { font: 15px/1.45 system-ui, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg);
  margin: 0 auto; padding: 1rem 1.5rem 4rem; max-width: 78rem; }
a { color: var(--link); }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid var(--line); }
h3 { margin: 0 0 .3rem; font-size: 1.15rem; } h4 { margin: .8rem 0 .3rem; } h5 { margin: 0 0 .3rem; font-size: 1rem; }
dl.meta, dl.state { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0; }
dl.meta dt, .turn dt, .state dt { color: var(--muted); } dl.meta dd, .turn dd, .state dd { margin: 0; }
dl.state { margin: .5rem 0; }
dl.figures { display: flex; flex-wrap: wrap; gap: .6rem; margin: 0 0 1rem; }
dl.figures div { background: var(--panel); border-radius: 6px; padding: .4rem .8rem; min-width: 7rem; }
dl.figures dt { color: var(--muted); font-size: .85rem; }
dl.figures dd { margin: 0; font-size: 1.3rem; font-weight: 600; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
table.numbers td { text-align: right; font-variant-numeric: tabular-nums; }
code { font: .85rem/1.3 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; white-space: pre-wrap; }
.badge { display: inline-block; border: 1px solid currentColor; border-radius: 4px; padding: 0 .35rem;
  font-size: .8rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
.badge.passed, .badge.fixed { color: var(--pass); } .badge.failed, .badge.regression { color: var(--fail); }
.badge.skipped { color: var(--skip); } .badge.regression { background: var(--fail); color: var(--bg); }
.badge.fixed { background: var(--pass); color: var(--bg); }
.scenario { border-left: 5px solid var(--pass); padding: .3rem 0 .3rem 1rem; margin: 1.6rem 0; }
.scenario.failed { border-color: var(--fail); } .scenario.skipped { border-color: var(--skip); }
.tags, .muted, .timing { color: var(--muted); font-size: .9rem; } .timing { font-weight: normal; margin-left: .6rem; }
summary { cursor: pointer; color: var(--link); padding: .2rem 0; }
ol.turns { padding-left: 0; list-style: none; }
.turn { background: var(--panel); border-radius: 6px; padding: .6rem .8rem; margin: .6rem 0; }
.turn.bad-turn { outline: 2px solid var(--fail); }
.turn dl { display: grid; grid-template-columns: 9rem 1fr; gap: .25rem 1rem; margin: 0; }
.turn ul { margin: 0; padding-left: 1.1rem; } .turn table { margin: 0; }
table.cards td, table.cards code { white-space: nowrap; }
.said { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; } .bad { color: var(--fail); }
figure.plot { margin: 1rem 0; } figure.plot img { max-width: 100%; height: auto; border-radius: 6px; }
#filter { margin: .5rem 0; }
"""
