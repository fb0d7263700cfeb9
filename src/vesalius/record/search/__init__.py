"""FHIR search (https://hl7.org/fhir/R4/search.html): index tables, value extraction, and the
search engine over them."""

from vesalius.record.search.engine import SearchEngine, SearchResult
from vesalius.record.search.indexer import SearchIndexer

__all__ = ["SearchEngine", "SearchIndexer", "SearchResult"]
