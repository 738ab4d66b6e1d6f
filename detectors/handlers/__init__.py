"""Lambda entry points: thin wrappers that parse, call the plain functions, log and emit."""
