"""The ack window (services/common/batch.py): one multiple ack for what is
done below every delivery still in flight, never past one; what is done
above one in flight acked on its own; each channel on its own tags."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.common.batch import AckWindow


@dataclass
class Channel:
    frames: list[tuple[int, bool]] = field(default_factory=list)


@dataclass
class Delivery:
    """What the window reads of an aio-pika message: its channel, its tag, ack()."""

    channel: Channel
    delivery_tag: int

    async def ack(self, multiple: bool = False) -> None:
        self.channel.frames.append((self.delivery_tag, multiple))


def deliveries(channel: Channel, count: int) -> list[Delivery]:
    return [Delivery(channel, tag) for tag in range(1, count + 1)]


async def test_a_batch_done_below_everything_in_flight_is_one_frame():
    window, channel = AckWindow(), Channel()
    batch = deliveries(channel, 5)
    for message in batch:
        window.arrived(message)  # type: ignore[arg-type]
    await window.done(*batch)  # type: ignore[arg-type]
    assert channel.frames == [(5, True)]
    assert (window.acks, window.acked, window.in_flight()) == (1, 5, 0)


async def test_never_past_a_delivery_still_in_flight():
    window, channel = AckWindow(), Channel()
    one, two, three, four = deliveries(channel, 4)
    for message in (one, two, three, four):
        window.arrived(message)  # type: ignore[arg-type]
    await window.done(one, three, four)  # type: ignore[arg-type]
    # two is held (a slow handler, a hold fault): one by the multiple ack up
    # to it, three and four each on their own, so nothing waits for two
    assert channel.frames == [(1, True), (3, False), (4, False)]
    await window.done(two)  # type: ignore[arg-type]
    assert channel.frames[-1] == (2, True)  # acks two alone: 1, 3 and 4 are settled
    assert window.in_flight() == 0


async def test_a_requeued_delivery_is_forgotten_and_stalls_nothing():
    window, channel = AckWindow(), Channel()
    one, two, three = deliveries(channel, 3)
    for message in (one, two, three):
        window.arrived(message)  # type: ignore[arg-type]
    window.forget(two)  # nacked back to its queue
    await window.done(one, three)  # type: ignore[arg-type]
    assert channel.frames == [(3, True)]


async def test_channels_keep_their_own_tags():
    window, old, new = AckWindow(), Channel(), Channel()
    stale = Delivery(old, 1)
    window.arrived(stale)  # type: ignore[arg-type]
    fresh = deliveries(new, 2)  # after a reconnect, tags start again at 1
    for message in fresh:
        window.arrived(message)  # type: ignore[arg-type]
    await window.done(*fresh)  # type: ignore[arg-type]
    assert new.frames == [(2, True)] and old.frames == []


async def test_two_batches_settling_at_once_ack_each_tag_once():
    window, channel = AckWindow(), Channel()
    batch = deliveries(channel, 40)
    for message in batch:
        window.arrived(message)  # type: ignore[arg-type]
    await asyncio.gather(
        window.done(*batch[::2]),  # type: ignore[arg-type]
        window.done(*batch[1::2]),  # type: ignore[arg-type]
    )
    covered: set[int] = set()
    for tag, multiple in channel.frames:
        span = {t for t in range(1, tag + 1) if t not in covered} if multiple else {tag}
        assert span and not span & covered, channel.frames  # no tag acked twice
        covered |= span
    assert covered == set(range(1, 41))
