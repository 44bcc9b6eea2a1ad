"""The minors module's own tables: who is a minor, their guardian consent, and an audit log.

Plain SQL that SQLite and PostgreSQL both accept (``?`` placeholders are converted by
Synapse), created on start-up so a fresh database needs no migration step.
"""

from __future__ import annotations

import json
from typing import Any

from synapse.module_api import ModuleApi
from synapse.storage.database import LoggingTransaction
from synapse.util.caches.descriptors import cached

from synapse_modules.minors_rules import ConsentRecord, MinorStatus

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS chat500_minors (
        user_id TEXT PRIMARY KEY, flagged_by TEXT NOT NULL, flagged_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS chat500_minor_consents (
        user_id TEXT PRIMARY KEY, guardian TEXT NOT NULL, relation TEXT NOT NULL,
        contact TEXT NOT NULL, evidence TEXT NOT NULL, recorded_by TEXT NOT NULL,
        recorded_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS chat500_minor_audit (
        user_id TEXT NOT NULL, ts BIGINT NOT NULL, action TEXT NOT NULL,
        actor TEXT NOT NULL, details TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS chat500_minor_audit_user ON chat500_minor_audit (user_id, ts)",
    # Accounts that registered themselves can never be a minor's (privacy policy section 13).
    """CREATE TABLE IF NOT EXISTS chat500_self_registered (
        user_id TEXT PRIMARY KEY, ts BIGINT NOT NULL)""",
)


def _audit(
    txn: LoggingTransaction, user_id: str, ts: int, action: str, actor: str, details: dict[str, Any]
) -> None:
    txn.execute(
        "INSERT INTO chat500_minor_audit (user_id, ts, action, actor, details)"
        " VALUES (?, ?, ?, ?, ?)",
        (user_id, ts, action, actor, json.dumps(details, sort_keys=True)),
    )


class MinorsStore:
    """Reads are cached per user (every client request asks); writes invalidate on all workers."""

    def __init__(self, api: ModuleApi) -> None:
        self._api = api
        # The @cached descriptor needs the homeserver's name (metrics) and clock; the module
        # API has no public accessor for the clock.
        self.server_name = api.server_name
        self.clock = api._clock
        self._tables_ready = False
        api.register_cached_function(self._cached_status)  # type: ignore[arg-type]

    async def ensure_tables(self) -> None:
        """Idempotent; run at start-up and, until it has, before any query."""
        if self._tables_ready:
            return

        def create(txn: LoggingTransaction) -> None:
            for statement in SCHEMA:
                txn.execute(statement)

        await self._api.run_db_interaction("chat500_minors_create_tables", create)
        self._tables_ready = True

    async def get_status(self, user_id: str) -> MinorStatus:
        return await self._cached_status(user_id)  # type: ignore[call-arg,arg-type,misc]

    @cached(max_entries=100000)
    async def _cached_status(self, user_id: str) -> MinorStatus:
        await self.ensure_tables()

        def read(txn: LoggingTransaction) -> MinorStatus:
            txn.execute("SELECT 1 FROM chat500_minors WHERE user_id = ?", (user_id,))
            if txn.fetchone() is None:
                return MinorStatus()
            txn.execute("SELECT 1 FROM chat500_minor_consents WHERE user_id = ?", (user_id,))
            return MinorStatus(is_minor=True, has_consent=txn.fetchone() is not None)

        return await self._api.run_db_interaction("chat500_minor_status", read)

    async def _changed(self, user_id: str) -> None:
        await self._api.invalidate_cache(self._cached_status, (user_id,))  # type: ignore[arg-type]

    async def flag(self, user_id: str, actor: str, now: int) -> bool:
        """Mark ``user_id`` a minor; False when it already was."""
        await self.ensure_tables()

        def write(txn: LoggingTransaction) -> bool:
            txn.execute("SELECT 1 FROM chat500_minors WHERE user_id = ?", (user_id,))
            if txn.fetchone() is not None:
                return False
            txn.execute(
                "INSERT INTO chat500_minors (user_id, flagged_by, flagged_at) VALUES (?, ?, ?)",
                (user_id, actor, now),
            )
            _audit(txn, user_id, now, "flagged_minor", actor, {})
            return True

        created = await self._api.run_db_interaction("chat500_minor_flag", write)
        await self._changed(user_id)
        return created

    async def unflag(self, user_id: str, actor: str, now: int) -> bool:
        await self.ensure_tables()

        def write(txn: LoggingTransaction) -> bool:
            txn.execute("DELETE FROM chat500_minors WHERE user_id = ?", (user_id,))
            removed = txn.rowcount > 0
            txn.execute("DELETE FROM chat500_minor_consents WHERE user_id = ?", (user_id,))
            if removed:
                _audit(txn, user_id, now, "unflagged_minor", actor, {})
            return removed

        removed = await self._api.run_db_interaction("chat500_minor_unflag", write)
        await self._changed(user_id)
        return removed

    async def record_consent(
        self, user_id: str, record: ConsentRecord, actor: str, now: int
    ) -> None:
        await self.ensure_tables()

        def write(txn: LoggingTransaction) -> None:
            txn.execute("DELETE FROM chat500_minor_consents WHERE user_id = ?", (user_id,))
            txn.execute(
                "INSERT INTO chat500_minor_consents (user_id, guardian, relation, contact,"
                " evidence, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    record.guardian,
                    record.relation,
                    record.contact,
                    record.evidence,
                    actor,
                    now,
                ),
            )
            _audit(
                txn,
                user_id,
                now,
                "consent_recorded",
                actor,
                {
                    "guardian": record.guardian,
                    "relation": record.relation,
                    "contact": record.contact,
                    "evidence": record.evidence,
                },
            )

        await self._api.run_db_interaction("chat500_minor_consent", write)
        await self._changed(user_id)

    async def revoke_consent(self, user_id: str, actor: str, now: int) -> bool:
        await self.ensure_tables()

        def write(txn: LoggingTransaction) -> bool:
            txn.execute("DELETE FROM chat500_minor_consents WHERE user_id = ?", (user_id,))
            removed = txn.rowcount > 0
            if removed:
                _audit(txn, user_id, now, "consent_revoked", actor, {})
            return removed

        removed = await self._api.run_db_interaction("chat500_minor_revoke", write)
        await self._changed(user_id)
        return removed

    async def get_consent(self, user_id: str) -> dict[str, Any] | None:
        await self.ensure_tables()

        def read(txn: LoggingTransaction) -> dict[str, Any] | None:
            txn.execute(
                "SELECT guardian, relation, contact, evidence, recorded_by, recorded_at"
                " FROM chat500_minor_consents WHERE user_id = ?",
                (user_id,),
            )
            row = txn.fetchone()
            if row is None:
                return None
            keys = ("guardian", "relation", "contact", "evidence", "recorded_by", "recorded_at")
            return dict(zip(keys, row, strict=True))

        return await self._api.run_db_interaction("chat500_minor_get_consent", read)

    async def get_audit(self, user_id: str) -> list[dict[str, Any]]:
        await self.ensure_tables()

        def read(txn: LoggingTransaction) -> list[dict[str, Any]]:
            txn.execute(
                "SELECT ts, action, actor, details FROM chat500_minor_audit"
                " WHERE user_id = ? ORDER BY ts",
                (user_id,),
            )
            return [
                {"ts": ts, "action": action, "actor": actor, "details": json.loads(details)}
                for ts, action, actor, details in txn.fetchall()
            ]

        return await self._api.run_db_interaction("chat500_minor_audit", read)

    async def note_self_registration(self, user_id: str, now: int) -> None:
        await self.ensure_tables()

        def write(txn: LoggingTransaction) -> None:
            txn.execute("DELETE FROM chat500_self_registered WHERE user_id = ?", (user_id,))
            txn.execute(
                "INSERT INTO chat500_self_registered (user_id, ts) VALUES (?, ?)", (user_id, now)
            )

        await self._api.run_db_interaction("chat500_note_self_registration", write)

    async def self_registered(self, user_id: str) -> bool:
        await self.ensure_tables()

        def read(txn: LoggingTransaction) -> bool:
            txn.execute("SELECT 1 FROM chat500_self_registered WHERE user_id = ?", (user_id,))
            return txn.fetchone() is not None

        return await self._api.run_db_interaction("chat500_self_registered", read)

    async def share_a_room(self, user_a: str, user_b: str) -> bool:
        """Both local users joined or invited in one room (Synapse's own membership table)."""
        await self.ensure_tables()

        def read(txn: LoggingTransaction) -> bool:
            txn.execute(
                "SELECT 1 FROM local_current_membership a JOIN local_current_membership b"
                " ON a.room_id = b.room_id WHERE a.user_id = ? AND b.user_id = ?"
                " AND a.membership IN ('join', 'invite') AND b.membership IN ('join', 'invite')"
                " LIMIT 1",
                (user_a, user_b),
            )
            return txn.fetchone() is not None

        return await self._api.run_db_interaction("chat500_minor_share_room", read)
