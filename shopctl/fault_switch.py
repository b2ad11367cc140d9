"""`shopctl fault`: switch faults on and off in a running sandbox.

A switch is one message on the ``shop.control`` exchange, routed to every
process of the part (``faults.<part>``). It is published mandatory: when no
process listens (the stack does not run in sandbox mode, or the part is
down) the broker returns it and the switch is refused, never silently lost."""

from __future__ import annotations

import asyncio

import aio_pika

from services.common.faults import CONTROL_EXCHANGE, FaultCommand, FaultSpec
from shopctl.amqp import broker_connection
from shopctl.errors import ShopError


async def send(broker_url: str, part: str, command: FaultCommand) -> None:
    async with broker_connection(broker_url, "shopctl fault") as connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(
            CONTROL_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        try:
            await exchange.publish(
                aio_pika.Message(command.model_dump_json(exclude_none=True).encode()),
                routing_key=f"faults.{part}",
                mandatory=True,
                timeout=10,
            )
        except aio_pika.exceptions.DeliveryError:
            raise ShopError(
                f"refused: no {part} process listens for faults "
                "(the stack is not in sandbox mode, or the part is down)",
                hint="sandbox mode is SHOP_FAULT_INJECTION=1 (shopctl up sets it)",
            ) from None


def switch_on(broker_url: str, fault: FaultSpec) -> None:
    asyncio.run(send(broker_url, fault.part, FaultCommand(action="set", fault=fault)))


def switch_off(broker_url: str, part: str, fault_id: str | None = None) -> None:
    asyncio.run(send(broker_url, part, FaultCommand(action="clear", id=fault_id)))
