"""The bundled data, installed as the package ``neurosym_data`` (see pyproject.toml): the arithmetic KG
(``arithmetic.ttl``), the project vocabulary (``vocab.ttl``), experiment configs (``configs/``), SPARQL
queries (``queries/``) and rule files (``rules/``). ``pipelines.bundled`` finds them."""
