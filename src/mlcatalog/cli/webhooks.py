"""``mlcatalog webhooks run``: deliver webhooks alone, beside API replicas that do not."""

import asyncio
import signal

import typer

from mlcatalog.events.webhooks import WebhookWorker, run_forever
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database

app = typer.Typer(help="Webhook delivery.", no_args_is_help=True)


async def _run() -> None:
    settings = Settings()
    database = Database(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = WebhookWorker(database, settings.webhooks)
    try:
        await run_forever(worker, stop=stop)
    finally:
        await worker.close()
        await database.dispose()


@app.command("run")
def run() -> None:
    """Deliver the journal's events to every project's webhooks until stopped (run `serve`
    with MLCATALOG_WEBHOOKS__SERVE_WORKER=false beside it, or not: hooks are leased one worker
    at a time)."""
    asyncio.run(_run())
