"""Apply schema/*.sql in order, idempotently, recording what was applied.

Run at collector start-up and by ``spanledger migrate``.  Numbered files are
versioned migrations and apply once; a file that starts with
``-- spanledger: repeatable`` (the ingest pipeline, which holds no data) is
re-applied whenever its rendered text changes, e.g. after a limit changed.
Re-applying it must not lose an insert running meanwhile (another collector
on the same server), so a view that already exists is never dropped: its
``CREATE MATERIALIZED VIEW`` is applied as ``ALTER TABLE ... MODIFY QUERY``,
which swaps the query atomically.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .ddl import SchemaFile, SchemaOptions, schema_files

log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """A schema statement failed; the message names the file and statement."""


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[str, ...]
    current_version: int


def applied_versions(client, options: SchemaOptions) -> dict[int, str]:
    """Version -> checksum of the last application of each schema file."""
    try:
        rows = client.query(
            f"SELECT Version, argMax(Checksum, AppliedAt) FROM {options.database}.spanledger_schema_versions GROUP BY Version"
        ).result_rows
    except Exception:  # the table does not exist yet: a fresh store
        return {}
    return {int(v): c for v, c in rows}


def migrate(client, options: SchemaOptions, *, before: int | None = None) -> MigrationReport:
    """Bring the store's schema up to date; safe to run any number of times.

    ``before`` stops short of that version, leaving the store as an older release left it: what an
    upgrade test starts from."""
    files = schema_files(options)
    done = applied_versions(client, options)
    applied = []
    for schema_file in files:
        if before is not None and schema_file.version >= before:
            continue
        if schema_file.version in done and (not schema_file.repeatable or done[schema_file.version] == schema_file.checksum):
            continue
        _apply(client, schema_file)
        client.command(
            f"INSERT INTO {options.database}.spanledger_schema_versions (Version, Name, Checksum) "
            "VALUES ({v:UInt32}, {n:String}, {c:String})",
            parameters={"v": schema_file.version, "n": schema_file.name, "c": schema_file.checksum},
        )
        applied.append(schema_file.name)
        log.info("applied schema %s", schema_file.name)
    versioned = [f.version for f in files if not f.repeatable]
    return MigrationReport(tuple(applied), max(versioned, default=0))


_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW\s+(?P<name>[\w.]+)\s+(?P<cluster>ON CLUSTER \w+\s+)?"
                   r"TO\s+[\w.]+\s+AS\s+(?P<query>.*)$", re.DOTALL)


def in_place(client, statement: str) -> str:
    """``statement``, or for a materialized view that exists already the ALTER that replaces its query."""
    match = _VIEW.match(statement)
    if not match or not client.command("EXISTS TABLE " + match["name"]):
        return statement
    return f"ALTER TABLE {match['name']} {match['cluster'] or ''}MODIFY QUERY {match['query']}"


def _apply(client, schema_file: SchemaFile) -> None:
    for statement in schema_file.statements:
        try:
            if schema_file.repeatable:
                statement = in_place(client, statement)
            client.command(statement)
        except Exception as exc:
            first_line = statement.splitlines()[0][:120]
            raise MigrationError(f"schema file {schema_file.name} failed at `{first_line}`: {exc}") from exc
