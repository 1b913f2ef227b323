"""Product retrieval: catalog ingest, encoders, Chroma store, BM25, hybrid search, reranking."""
