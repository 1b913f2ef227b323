"""Intent routing: the ontology (what a shopper can ask for) and a fast classifier over sentence embeddings."""
