"""Discovery scenarios from judged data: each ESCI query becomes a "find me …" conversation over the ESCI
catalog, scored by nDCG@5 of the cards against the query's judgements (and checked like every turn: no product
the catalog lacks, the catalog's prices)."""

from __future__ import annotations

from pathlib import Path

from assistant.settings import SHARED_DATA
from eval.dialogues.scenario import Expect, ProductsCheck, Scenario, Turn
from eval.metrics import read_qrels, read_queries

ESCI_DIR = SHARED_DATA / "esci-subset"
TEMPLATES = ("find me {q}", "I'm looking for {q}", "do you have {q}?", "show me {q}")


def esci_scenarios(limit: int | None = None, esci_dir: Path = ESCI_DIR) -> list[Scenario]:
    """One scenario per judged query (the first `limit`, in file order), tagged `discovery`."""
    queries = read_queries(esci_dir / "queries.tsv")
    qrels = read_qrels(esci_dir / "qrels.tsv")
    out = []
    for n, (qid, query) in enumerate(queries.items()):
        if qid not in qrels:
            continue
        out.append(
            Scenario(
                name=f"esci-{qid}",
                description=f"ESCI query {qid}: {query!r}, scored by nDCG@5 against its judgements",
                tags=["discovery"],
                catalog="esci",
                turns=[
                    Turn(
                        say=TEMPLATES[n % len(TEMPLATES)].format(q=query), expect=Expect(products=ProductsCheck(min=1))
                    )
                ],
                qrels=qrels[qid],
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out
