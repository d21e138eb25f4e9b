"""Reading the PostgreSQL audit log for `audit verify|tail|export` (`AuditSource`).

`verify` walks every chain in one REPEATABLE READ snapshot, each through a server-side cursor (a
chain of millions of rows is streamed, never loaded), and reports every chain: its head, or the
first bad record. A chain registered in `audit_chains` whose records are all gone, and records of
a chain nobody registered, are reported too. `tail` and `export` merge the chains in time order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kt_trio.audit.reader import ChainResult, Heads, Row, VerifyResult, verify_rows
from kt_trio.audit.store import CHECKPOINT_KIND, chain_genesis
from kt_trio.postgres import connect

_COLUMNS = "seq, ts, kind, session_id, data, prev_hash, hash, chain_id"
# Rows fetched per round trip from a server-side cursor: a few MB at most, whatever the chain's size.
_ITERSIZE = 2000
_FOLLOW_LIMIT = 1000  # rows per chain per `tail -f` poll


def _row(values: tuple[Any, ...]) -> Row:
    seq, ts, kind, session_id, data, prev_hash, digest, chain = values
    return Row(int(seq), str(ts), str(kind), session_id, str(data), str(prev_hash), str(digest), str(chain))


class PostgresSource:
    """The audit tables in the database `dsn` names, through one connection of the CLI's own."""

    def __init__(self, dsn: str) -> None:
        self.conn = connect(dsn, application_name="kt_trio audit cli")
        try:
            found = self.conn.execute("SELECT to_regclass('audit_records') IS NOT NULL").fetchone()
        except BaseException:
            self.conn.close()
            raise
        if not found or not found[0]:
            self.conn.close()
            raise FileNotFoundError("no audit log in this PostgreSQL database (no gateway has written to it yet)")

    def close(self) -> None:
        self.conn.close()

    def _begin_snapshot(self) -> None:
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _chains(self) -> tuple[list[str], set[str]]:
        """(every chain with records or registered, the registered ones)."""
        registered = {str(c) for (c,) in self.conn.execute("SELECT chain_id FROM audit_chains").fetchall()}
        # DISTINCT by skipping along the primary key: one index probe per chain, not a table scan.
        present = {
            str(c)
            for (c,) in self.conn.execute(
                "WITH RECURSIVE c(id) AS ("
                " SELECT min(chain_id) FROM audit_records"
                " UNION ALL SELECT (SELECT min(chain_id) FROM audit_records WHERE chain_id > c.id)"
                " FROM c WHERE c.id IS NOT NULL)"
                " SELECT id FROM c WHERE id IS NOT NULL"
            ).fetchall()
        }
        return sorted(registered | present), registered

    def verify(self, anchors: Mapping[str | None, tuple[int, str]]) -> list[ChainResult]:
        results: list[ChainResult] = []
        with self.conn.transaction():
            self._begin_snapshot()
            chains, registered = self._chains()
            for chain in chains:
                result = self._verify_chain(chain, anchors.get(chain))
                if result.ok and result.count == 0:
                    result = VerifyResult(0, None, None, None, 1, f"chain {chain!r} has no records (deleted)")
                elif result.ok and chain not in registered:
                    what = f"chain {chain!r} was never registered by a writer (inserted)"
                    result = VerifyResult(result.count, result.first_seq, result.last_seq, None, result.first_seq, what)
                results.append((chain, result))
            for anchored, (seq, _) in anchors.items():
                if anchored not in chains:
                    what = f"the anchor's chain {anchored!r} has no records (deleted or renamed)"
                    results.append((anchored, VerifyResult(0, None, None, None, seq, what)))
        return results

    def _verify_chain(self, chain: str, anchor: tuple[int, str] | None) -> VerifyResult:
        checkpoint = self.conn.execute(
            "SELECT seq, data FROM audit_records WHERE chain_id = %s AND kind = %s ORDER BY seq DESC LIMIT 1",
            (chain, CHECKPOINT_KIND),
        ).fetchone()
        with self.conn.cursor(name="kt_trio_verify") as cur:
            cur.itersize = _ITERSIZE
            cur.execute(f"SELECT {_COLUMNS} FROM audit_records WHERE chain_id = %s ORDER BY seq", (chain,))
            rows = (_row(values) for values in cur)
            cp = None if checkpoint is None else (int(checkpoint[0]), str(checkpoint[1]))
            return verify_rows(rows, cp, anchor, chain_genesis(chain))

    def last_rows(self, n: int, session_id: str | None) -> list[Row]:
        where, params = ("WHERE session_id = %s", (session_id,)) if session_id is not None else ("", ())
        sql = f"SELECT {_COLUMNS} FROM audit_records {where} ORDER BY ts DESC, chain_id DESC, seq DESC LIMIT %s"
        rows = [_row(v) for v in self.conn.execute(sql, (*params, n)).fetchall()]  # type: ignore[arg-type]
        return list(reversed(rows))

    def heads(self) -> Heads:
        heads: Heads = {}
        for chain in self._chains()[0]:
            row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_records WHERE chain_id = %s", (chain,))
            found = row.fetchone()
            heads[chain] = int(found[0]) if found else 0
        return heads

    def rows_after(self, heads: Heads, session_id: str | None) -> list[Row]:
        """New records of every chain (a chain that appeared since is read from its start),
        merged in time order; `heads` moves on to what was returned."""
        where = "AND session_id = %s" if session_id is not None else ""
        found: list[Row] = []
        for chain in self._chains()[0]:
            params: tuple[Any, ...] = (chain, heads.get(chain, 0), *((session_id,) if session_id is not None else ()))
            sql = f"SELECT {_COLUMNS} FROM audit_records WHERE chain_id = %s AND seq > %s {where} ORDER BY seq LIMIT %s"
            rows = [_row(v) for v in self.conn.execute(sql, (*params, _FOLLOW_LIMIT)).fetchall()]  # type: ignore[arg-type]
            if rows:
                heads[chain] = rows[-1].seq
                found.extend(rows)
        found.sort(key=lambda r: (r.ts, r.chain or "", r.seq))
        return found

    def export(self, since: str | None, until: str | None) -> Iterator[Row]:
        clauses, params = [], []
        if since is not None:
            clauses.append("ts >= %s")
            params.append(since)
        if until is not None:
            clauses.append("ts < %s")
            params.append(until)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.conn.transaction():
            self._begin_snapshot()  # one snapshot: the export is a consistent slice of every chain
            with self.conn.cursor(name="kt_trio_export") as cur:
                cur.itersize = _ITERSIZE
                cur.execute(f"SELECT {_COLUMNS} FROM audit_records {where} ORDER BY ts, chain_id, seq", params)  # type: ignore[arg-type]
                for values in cur:
                    yield _row(values)
