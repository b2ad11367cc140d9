"""The connection budget: the stack's pools together fit the server (L1)."""

from __future__ import annotations

import pytest

from shopctl.errors import ShopError
from shopctl.runtimes.budget import DEFAULT_CEILING, LISTEN_CONNECTIONS, plan_budget, read_budget
from shopctl.stack import PARTS
from tests.conftest import PG_ADMIN_URL


def test_default_server_gives_seven_parts_a_share_that_fits():
    budget = plan_budget(100, 3, held_by_others=6, processes=7, reserve=10)
    assert budget.available == 81
    assert budget.per_process == 11  # 81 // 7
    assert budget.pool_size + budget.max_overflow + LISTEN_CONNECTIONS == budget.per_process
    assert budget.total <= budget.available
    assert budget.environment() == {"SHOP_DB_POOL_SIZE": "5", "SHOP_DB_MAX_OVERFLOW": "5"}
    assert "100 max - 3 superuser - 10 reserve - 6 held by others = 81 free" in budget.describe()


def test_a_large_server_is_not_taken_whole():
    budget = plan_budget(1000, 3, held_by_others=0, processes=7, reserve=10)
    assert budget.per_process == DEFAULT_CEILING


def test_too_few_connections_is_one_sentence():
    with pytest.raises(ShopError) as caught:
        plan_budget(30, 3, held_by_others=10, processes=8, reserve=10)
    assert caught.value.message == (
        "PostgreSQL has 7 connections free for the stack's 8 processes, and each needs at least 3"
    )
    assert "raise max_connections (now 30)" in (caught.value.hint or "")


# it reads the server's free connections: in the group that holds no sandbox
# meanwhile; beside the session's stack and the other group's sandbox (40 +
# 28 at most, tests/conftest.py) 29 are left, 4 a process with no reserve
@pytest.mark.xdist_group("own-servers")
def test_read_off_this_machines_server():
    budget = read_budget(PG_ADMIN_URL, len(PARTS), reserve=0)
    assert budget.max_connections >= 20
    assert budget.held_by_others >= 0
    assert 3 <= budget.per_process <= DEFAULT_CEILING
    assert budget.total <= budget.available
