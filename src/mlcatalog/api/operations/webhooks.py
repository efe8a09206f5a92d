"""createWebhook, updateWebhook, deleteWebhook and testWebhook."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.types.webhooks import (
    CreateWebhookInput,
    CreateWebhookPayload,
    DeleteWebhookInput,
    DeleteWebhookPayload,
    TestWebhookInput,
    TestWebhookPayload,
    UpdateWebhookInput,
    UpdateWebhookPayload,
    Webhook,
    WebhookDelivery,
)
from mlcatalog.catalog import webhooks
from mlcatalog.catalog.projects import project_by_name
from mlcatalog.events.webhooks import ping


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="A hook that receives the project's events from now on; its secret is in"
        " the payload, and only there."
    )
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookPayload:
        async with info.context.unit_of_work() as uow:
            project = await project_by_name(uow, input.project)
            made = await webhooks.create_webhook(uow, project_id=project.id, **input.to_catalog())
        return CreateWebhookPayload(webhook=Webhook.from_row(made.webhook), secret=made.secret)

    @strawberry.mutation
    async def update_webhook(self, info: Info, input: UpdateWebhookInput) -> UpdateWebhookPayload:
        async with info.context.unit_of_work() as uow:
            row = await webhooks.update_webhook(
                uow, webhook_id=decode(input.id, "Webhook"), **input.to_catalog()
            )
        return UpdateWebhookPayload(webhook=Webhook.from_row(row))

    @strawberry.mutation(description="Delete a hook and its deliveries.")
    async def delete_webhook(self, info: Info, input: DeleteWebhookInput) -> DeleteWebhookPayload:
        async with info.context.unit_of_work() as uow:
            await webhooks.delete_webhook(uow, webhook_id=decode(input.id, "Webhook"))
        return DeleteWebhookPayload(deleted_id=input.id)

    @strawberry.mutation(
        description="Send a ping now (action webhook.ping, signed like every event) and answer"
        " the attempt; it moves no cursor and counts toward no run of failures."
    )
    async def test_webhook(self, info: Info, input: TestWebhookInput) -> TestWebhookPayload:
        async with info.context.unit_of_work() as uow:
            hook = await webhooks.request_ping(uow, webhook_id=decode(input.id, "Webhook"))
        delivery = await ping(info.context.database, info.context.webhooks, hook)
        return TestWebhookPayload(delivery=WebhookDelivery.from_row(delivery))
