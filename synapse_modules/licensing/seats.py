"""The license module's database reads and its one table, on SQLite and PostgreSQL alike.

Seats count people: active (not deactivated), not guests, not application-service users,
and not the server-notices system account.
"""

from __future__ import annotations

import time
from typing import Any

from synapse.module_api import ModuleApi

NOTICE_TABLE = "chat500_license_notices"


async def count_active_accounts(api: ModuleApi, notices_mxid: str | None) -> int:
    def txn(cur: Any) -> int:
        cur.execute(
            "SELECT COUNT(*) FROM users WHERE deactivated = 0 AND is_guest = 0"
            " AND appservice_id IS NULL AND name != ?",
            (notices_mxid or "",),
        )
        row = cur.fetchone()
        return int(row[0]) if row else 0

    return await api.run_db_interaction("chat500_license_count_seats", txn)


async def list_admins(api: ModuleApi, notices_mxid: str | None) -> list[str]:
    def txn(cur: Any) -> list[str]:
        cur.execute(
            "SELECT name FROM users WHERE admin = 1 AND deactivated = 0"
            " AND appservice_id IS NULL AND name != ? ORDER BY name",
            (notices_mxid or "",),
        )
        return [str(row[0]) for row in cur.fetchall()]

    return await api.run_db_interaction("chat500_license_admins", txn)


async def create_notice_table(api: ModuleApi) -> None:
    def txn(cur: Any) -> None:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {NOTICE_TABLE} ("
            " license_id TEXT NOT NULL, notice TEXT NOT NULL, user_id TEXT NOT NULL,"
            " sent_ts BIGINT NOT NULL, PRIMARY KEY (license_id, notice, user_id))"
        )

    await api.run_db_interaction("chat500_license_notice_table", txn)


async def sent_notices(api: ModuleApi, license_id: str) -> dict[str, set[str]]:
    """Per admin, the notices of this license already sent to them."""

    def txn(cur: Any) -> dict[str, set[str]]:
        cur.execute(
            f"SELECT user_id, notice FROM {NOTICE_TABLE} WHERE license_id = ?", (license_id,)
        )
        sent: dict[str, set[str]] = {}
        for user_id, notice in cur.fetchall():
            sent.setdefault(str(user_id), set()).add(str(notice))
        return sent

    return await api.run_db_interaction("chat500_license_sent_notices", txn)


async def record_notice(api: ModuleApi, license_id: str, notice: str, user_id: str) -> None:
    def txn(cur: Any) -> None:
        cur.execute(
            f"SELECT 1 FROM {NOTICE_TABLE} WHERE license_id = ? AND notice = ? AND user_id = ?",
            (license_id, notice, user_id),
        )
        if cur.fetchone() is None:
            cur.execute(
                f"INSERT INTO {NOTICE_TABLE} (license_id, notice, user_id, sent_ts)"
                " VALUES (?, ?, ?, ?)",
                (license_id, notice, user_id, int(time.time() * 1000)),
            )

    await api.run_db_interaction("chat500_license_record_notice", txn)
