"""report.html: one self-contained page over a run's results.json — its figures, regressions and fixes against a
baseline, plots, and every scenario's failed checks and transcripts.

Nothing in the page is fetched: styles, plots (PNG data URIs from matplotlib) and the few lines of script that
filter failed scenarios are inline, and a Content-Security-Policy forbids anything else. Messages and answers
are untrusted text (adversarial scenarios carry HTML and script in them): every value goes through `esc`,
and only `Markup` built here is written as it is.

The package: `page` assembles the page (head, header and figures, baseline, sections) and writes it;
`scenarios` renders each scenario, its trials, failed checks and transcript; `plots` draws the matplotlib
figures; `markup` is the escaping element builder and the small value formatters; `style` holds the CSS and
the filter script.
"""

from eval.dialogues.html.page import render, write_html

__all__ = ["render", "write_html"]
