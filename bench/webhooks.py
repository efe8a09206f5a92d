"""Webhook deliveries per second: one worker in process draining the journal to a receiver on
127.0.0.1 in a process of its own (tests/events/receiver.py, a raw asyncio server).

    python bench/webhooks.py [--events 2000] [--hooks 1,4] [--database-url URL]

Each case writes the events first (model registrations in one project, 100 per transaction),
then times a worker from the first claim until every hook's cursor reaches the journal's head:
per hook one POST at a time in journal order, hooks side by side (settings.concurrency).
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from mlcatalog.catalog import models, projects, webhooks  # noqa: E402
from mlcatalog.events.webhooks import WebhookWorker  # noqa: E402
from mlcatalog.settings import WebhookSettings  # noqa: E402
from mlcatalog.store import migrate  # noqa: E402
from mlcatalog.store.database import Database, Origin  # noqa: E402
from mlcatalog.store.rows import Base, JournalHeadRow, WebhookDeliveryRow, WebhookRow  # noqa: E402

SETTINGS = WebhookSettings(allow_networks=["127.0.0.1/32"])


async def case(url: str, receiver: str, events: int, hooks: int) -> dict[str, float]:
    database = Database(url)
    await migrate.upgrade(database)
    if database.dialect == "postgresql":
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with database.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    origin = Origin(actor="bench")
    async with database.unit_of_work(origin) as uow:
        project = await projects.create_project(uow, name="bench", description=None)
        for _ in range(hooks):
            await webhooks.create_webhook(
                uow, project_id=project.id, url=receiver, actions=["model.registered"]
            )
    for start in range(0, events, 100):
        async with database.unit_of_work(origin) as uow:
            for i in range(start, min(start + 100, events)):
                await models.register_model(uow, project_id=project.id, name=f"m{i}")
    worker = WebhookWorker(database, SETTINGS)
    began = time.perf_counter()
    try:
        while await worker.run_once() or await worker.due():
            pass
    finally:
        await worker.close()
    elapsed = time.perf_counter() - began
    async with database.read() as session:
        delivered = await session.scalar(
            select(func.count())
            .select_from(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.status_code == 200)
        )
        head = await session.scalar(select(JournalHeadRow.seq))
        behind = await session.scalar(
            select(func.count()).select_from(WebhookRow).where(WebhookRow.delivered_seq < head)
        )
        p50 = await session.scalar(
            select(WebhookDeliveryRow.duration_ms)
            .order_by(WebhookDeliveryRow.duration_ms)
            .offset((delivered or 1) // 2)
            .limit(1)
        )
    await database.dispose()
    if delivered != events * hooks or behind:
        raise SystemExit(f"delivered {delivered} of {events * hooks}; {behind} hooks behind")
    return {"deliveries": float(delivered or 0), "seconds": elapsed, "post_p50_ms": p50 or 0.0}


async def cases(url: str, events: int, hooks: list[int], database_url: str | None) -> None:
    print("| hooks | events | deliveries | seconds | deliveries/s | POST p50 |")
    print("|---|---|---|---|---|---|")
    for count in hooks:
        with tempfile.TemporaryDirectory() as directory:
            target = database_url or f"sqlite+aiosqlite:///{directory}/bench.db"
            got = await case(target, url, events, count)
        rate = got["deliveries"] / got["seconds"]
        print(
            f"| {count} | {events} | {got['deliveries']:.0f} | {got['seconds']:.2f} |"
            f" {rate:.0f} | {got['post_p50_ms']:.2f} ms |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--hooks", default="1,4")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.events.receiver"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        url = f"http://127.0.0.1:{receiver.stdout.readline().strip()}/hook"
        hooks = [int(h) for h in args.hooks.split(",")]
        asyncio.run(cases(url, args.events, hooks, args.database_url))
    finally:
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    main()
