"""Chat latency under load: time to products and to the first token, rates and errors, against vLLM direct.

`python -m eval.bench_chat --help` lists the options; it writes a JSON report and a PNG plot and prints a
one-line summary last.

Benchmarks a running service; starts no server. Per concurrency level N (levels run one after another),
N shoppers chat at once, each in its own session (agent key, shopper_id "1".."N") for a fixed number of
turns from a fixed script: a search, the follow-up "tell me about the second one", another search.
Times are taken from sending `POST /v1/chat`: to the `products` event, to the first `token` event, to the
end of the stream. A turn is an error when the HTTP status is not 200, the stream breaks or times out,
it carries an `error` event, or it ends with a `done` status other than completed.

The same prompt sent straight to vLLM: the service keeps every answer-model call in the turn's trace, with
the exact messages it sent. After a level's service turns, the bench reads each session (GET
/v1/sessions/{id}) and replays every model-phrased turn's messages against the model server at the same
concurrency (one client per shopper, its turns in order), with the same max_tokens and temperature 0.
Overhead = service first-token p50 / direct first-token p50 over those paired turns at that concurrency.
The service's time also holds what it does besides the answer (routing, search, storing events, the
grounding filter holding text back) — which is the point. The trace's timings split it: time before the
model request, the model's own first text, and the filters' hold (`breakdown` in the JSON).

`--rounds R` repeats each level R times with new sessions, service and direct alternating, and pools the
turns: at 8 shoppers x 3 turns the p95 of one round is its second-slowest turn, which swings widely
between runs on shared cores.

Before the levels, one unmeasured warm-up pass runs the same scripts through the service, so that the
model server's prefix cache holds every prompt on both sides (the direct phase replays prompts the service
has just sent); `--no-warmup` skips it and then favours the direct side at the first level.

Units: the service's `token` events are text pieces released by the grounding filter (a word up to a whole
sentence); the direct stream's are streamed chunks (about one model token each). Rates per stream are
counted after the first piece: pieces/s = (pieces - 1) / (last - first piece time) and, comparable across
both sides, words/s = words after the first piece over the same span (none for a one-piece answer).

Targets (`report.TARGETS`, judged in the report): products p95 and overhead at every level, first-token p95
at 1 and at 8 shoppers. `--vllm-url auto` (the default without $SHOP_LLM_BASE_URL) takes the newest address in
the embedded server's log, <data dir>/vllm.log; the direct run is skipped when no model server answers.

- `cli`: the options, and the report assembled from the run (environment, targets, files, summary line);
- `config`: a run's settings and its progress log;
- `run`: the whole run (readiness, warm-up, levels and rounds, service then direct);
- `shoppers`: what the simulated shoppers say, and their turns against the service and against vLLM;
- `client`: SSE parsing and one streamed turn over HTTP (`TurnResult`);
- `stats`: distributions, the first-token breakdown and the service/direct overhead;
- `report`: targets, table, summary line, plot.
"""

from eval.bench_chat.cli import main
from eval.bench_chat.shoppers import SCRIPTS

__all__ = ["SCRIPTS", "main"]
