"""The store's hot statements, run on the pool's DBAPI connection without SQLAlchemy's
per-execution machinery (events, execution contexts, result objects). Measured on SQLite
(synchronous=FULL, WAL), CPU per call: claim 0.53 -> 0.32 ms, record_success 0.45 -> 0.27,
create 0.44 -> 0.29, get 0.14 -> 0.07; what is left is mostly SQLite's commit and the pool.

The SQL is still SQLAlchemy's: each statement is compiled once per engine, for its dialect,
and run as compiled. What SQLAlchemy does on every execution is done here with its public
pieces: bound values go through their types' bind processors (DecimalText, UTCDateTime,
SQLite's datetime strings) in the dialect's parameter order, returned columns through their
result processors; DBAPI errors come back as SQLAlchemy's, without parameters
(`hide_parameters`: the store's parameters hold `response_url`s); a connection lost
(PostgreSQL restarted or killed) is invalidated, so the pool never hands it out again.

Transactions are the engine's: the connection is a pool checkout (the checkout guard on a
SQLite file deleted or replaced, PostgreSQL's pre-ping), SQLite writers begin IMMEDIATE and
readers deferred (see `bot.store.engine`), psycopg begins implicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, cast

from sqlalchemy import Engine, Insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.expression import Executable

from bot.store.engine import sqlite_begin

Row = dict[str, Any]
_Processor = Callable[[Any], Any] | None


class Runner(Protocol):
    """What the store's transitions need of a transaction: the fast one below, or a
    SQLAlchemy connection (`OnConnection`) where a path stays on SQLAlchemy."""

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row | None: ...

    def execute(self, statement: Executable, params: Mapping[str, Any]) -> None: ...


class OnConnection:
    """A `Runner` on a SQLAlchemy connection, inside its transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row | None:
        row = self._conn.execute(statement, dict(params)).first()
        return None if row is None else dict(row._mapping)

    def execute(self, statement: Executable, params: Mapping[str, Any]) -> None:
        self._conn.execute(statement, dict(params))


class Prepared:
    """One statement compiled for one dialect, with its bind and result processing."""

    def __init__(
        self, statement: Executable, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        # render_postcompile writes the IN lists (constant statuses) into the SQL; it needs a
        # value for every parameter at compile time, so the caller's ones are made optional
        # on a copy (they stay placeholders, filled at each execution).
        callers = set(column_keys or ())

        def _optional(bind: BindParameter[Any]) -> None:
            if bind.required:
                callers.add(bind.key)
            bind.required = False

        copy = visitors.cloned_traverse(
            cast(ClauseElement, statement), {}, {"bindparam": _optional}
        )
        compiled = cast(
            SQLCompiler,
            copy.compile(
                dialect=dialect,
                column_keys=list(column_keys) if column_keys is not None else None,
                compile_kwargs={"render_postcompile": True},
            ),
        )
        self.sql = compiled.string
        # The statement's constants come out as their value.
        defaults: Mapping[str, Any] = compiled.construct_params(
            {key: None for key in column_keys or ()}
        )
        names = list(compiled.positiontup or defaults)
        if column_keys is not None and not set(names) <= callers:
            # Columns the INSERT was not given take their defaults in SQLAlchemy's execution
            # context, which this path skips: give the fast path every column.
            missing = sorted(set(names) - callers)
            raise ValueError(f"the INSERT needs every column; not given: {missing}")
        types = {name: bind.type for name, bind in compiled.binds.items()}
        # (name, processor, fixed, value): the statement's constants are processed here, once.
        self._binds: list[tuple[str, _Processor, bool, Any]] = []
        for name in names:
            type_ = types[name] if name in types else _expanded_type(compiled.binds, name)
            processor = _bind_processor(type_, dialect)
            value = defaults[name]
            fixed = name not in callers
            if fixed and processor is not None:
                value = processor(value)
            self._binds.append((name, processor, fixed, value))
        self._positional = compiled.positiontup is not None
        self._names = names
        columns = getattr(statement, "exported_columns", None) or []
        self._columns: list[tuple[str, _Processor]] = [
            (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in columns
        ]

    def parameters(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """`given` (by bind name) in the dialect's paramstyle, processed by their types."""
        values = []
        for name, processor, fixed, constant in self._binds:
            # A value given overrides the statement's own, as in SQLAlchemy.
            if fixed and name not in given:
                values.append(constant)
                continue
            value = given[name]
            values.append(value if processor is None else processor(value))
        if self._positional:
            return values
        return dict(zip(self._names, values, strict=True))

    def row(self, values: Sequence[Any]) -> Row:
        """A returned row as the store's mapping, processed by the columns' types."""
        # None stays None: every type here maps it to None, and it saves a call.
        return {
            key: value if processor is None or value is None else processor(value)
            for (key, processor), value in zip(self._columns, values, strict=True)
        }


def _bind_processor(type_: Any, dialect: Dialect) -> _Processor:
    processor: _Processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _expanded_type(binds: Mapping[str, BindParameter[Any]], name: str) -> Any:
    """The type of one value of an expanded IN list (`status_1_1` of `status_1`)."""
    for key, bind in binds.items():
        if bind.expanding and name.startswith(f"{key}_"):
            return bind.type
    raise LookupError(f"no bound parameter for {name}")


class Statements:
    """The prepared statements of one engine, and transactions on its pool's connections."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._sqlite = engine.dialect.name == "sqlite"
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._prepared: dict[Any, Prepared] = {}

    def prepared(self, statement: Executable, params: Mapping[str, Any]) -> Prepared:
        # An INSERT's columns are the keys it is executed with (as SQLAlchemy compiles it).
        key: Any = (statement, tuple(params)) if isinstance(statement, Insert) else statement
        found = self._prepared.get(key)
        if found is None:
            keys = tuple(params) if isinstance(statement, Insert) else None
            found = self._prepared[key] = Prepared(statement, self._dialect, keys)
        return found

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Transaction]:
        """One transaction on a pool checkout: committed when the block ends (a read is
        rolled back, as SQLAlchemy ends one), rolled back on any error."""
        try:
            raw = self._engine.raw_connection()
        except self._error as error:
            raise self.wrapped(None, error, invalidated=self._is_disconnect(error, None)) from error
        transaction = Transaction(self, raw)
        try:
            if self._sqlite:
                transaction.begin(sqlite_begin(write=write))
            yield transaction
            transaction.end(commit=write)
        except BaseException:
            transaction.abort()
            raise
        finally:
            raw.close()

    def wrapped(self, sql: str | None, error: Any, *, invalidated: bool) -> StatementError:
        """SQLAlchemy's error for a DBAPI one, as its Connection raises it: never with the
        parameters."""
        wrapped: StatementError = DBAPIError.instance(
            sql,
            None,
            error,
            self._error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=self._dialect,
        )
        return wrapped

    def _is_disconnect(self, error: Any, dbapi_conn: Any, cursor: Any = None) -> bool:
        return bool(self._dialect.is_disconnect(error, dbapi_conn, cursor))


class Transaction:
    """Statements of one transaction, on one DBAPI connection and cursor."""

    def __init__(self, statements: Statements, raw: PoolProxiedConnection) -> None:
        self._statements = statements
        self._raw = raw
        self._dbapi: Any = raw.dbapi_connection
        self._cursor = raw.cursor()
        self._invalidated = False

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row | None:
        """The first row the statement returns, or None."""
        prepared = self._statements.prepared(statement, params)
        cursor = self._cursor
        try:
            cursor.execute(prepared.sql, prepared.parameters(params))
            row = cursor.fetchone()
            # The rest, so an UPDATE ... RETURNING is done with before the next statement.
            cursor.fetchall()
        except self._statements._error as error:
            raise self._failed(prepared.sql, error) from error
        return None if row is None else prepared.row(row)

    def execute(self, statement: Executable, params: Mapping[str, Any]) -> None:
        prepared = self._statements.prepared(statement, params)
        try:
            self._cursor.execute(prepared.sql, prepared.parameters(params))
        except self._statements._error as error:
            raise self._failed(prepared.sql, error) from error

    def execute_many(self, statement: Executable, many: Sequence[Mapping[str, Any]]) -> None:
        """One statement for each mapping of `many` (all with the same keys)."""
        if not many:
            return
        if len(many) == 1:
            # One: psycopg's executemany costs a pipeline of its own.
            self.execute(statement, many[0])
            return
        prepared = self._statements.prepared(statement, many[0])
        try:
            self._cursor.executemany(prepared.sql, [prepared.parameters(p) for p in many])  # type: ignore[arg-type]
        except self._statements._error as error:
            raise self._failed(prepared.sql, error) from error

    def begin(self, sql: str) -> None:
        try:
            self._dbapi.execute(sql)
        except self._statements._error as error:
            raise self._failed(sql, error) from error

    def end(self, *, commit: bool) -> None:
        try:
            if commit:
                self._dbapi.commit()
            else:
                self._dbapi.rollback()
        except self._statements._error as error:
            raise self._failed("COMMIT" if commit else "ROLLBACK", error) from error

    def abort(self) -> None:
        """Roll back after an error; a connection that cannot even do that is dropped."""
        if self._invalidated:
            return
        try:
            self._dbapi.rollback()
        except self._statements._error as error:
            self._raw.invalidate(error)
            self._invalidated = True

    def _failed(self, sql: str, error: Exception) -> StatementError:
        statements = self._statements
        lost = statements._is_disconnect(error, self._dbapi, self._cursor)
        if lost and not self._invalidated:
            self._raw.invalidate(error)
            self._invalidated = True
        return statements.wrapped(sql, error, invalidated=lost)
