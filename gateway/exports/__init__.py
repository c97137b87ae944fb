"""Exports for operators: every application, grant or enforcement action that matches a
filter, as CSV or JSON Lines, read from the database a batch at a time and written as
the rows come (the operator API's `/api/v1/ops/exports/...` and `gateway export`)."""
