"""Synthetic card transactions whose fraud only shows in each card's history, with a drift.

Every event is one card payment, in the order it reaches the stream::

    {"tx_id": "tx-17", "card": "c1204", "merchant": "m88", "amount": 37.15,
     "time": 1767225612345, "is_fraud": False}

``time`` is epoch milliseconds of event time; ``tx_id`` numbers events in arrival order.

**Legitimate use.** Each card has a typical amount (lognormal across cards, median 40,
so some cards usually spend 5 and others 300) and 2-5 favourite merchants, where 85% of
its payments go. A card pays about once every ``cards * 0.5 s`` (1000 s with the default
2000 cards, ±40% per card), with fairly regular gaps (gamma, shape 4): a card seldom
pays twice within a few minutes, and only about 1% of legitimate payments come after
two or more of the card's payments in the previous ten minutes. Across all cards an
event arrives every 0.5 s on average, so 50,000 events span about seven hours.

**Fraud before ``drift_at`` ("burst").** A compromised card makes a burst of 4-8 payments
5-45 s apart (a few minutes in all), each at 3-8 times the card's typical amount, each at
a random merchant. All of them are fraud.

**Fraud from ``drift_at`` on ("card testing").** A compromised card makes 10-24 payments
of 0.50-5.00 at as many distinct random merchants, spread over an hour. All are fraud.
The switch is sharp: every fraud event before index ``drift_at`` (default ``n // 2``) is
part of a burst, every one from it on is card testing. Bursts still under way at the
drift point are cut short, and card testing starts as if it had been going on for an
hour, so about 3% of events are fraud on both sides of the drift.

**What separates fraud.** The raw fields are weak: merchants are uniform, a burst's amount
is only unusual *for that card*, and card testing looks like a coffee. Per-card windowed
features separate well: the card's transaction count over the last 10 minutes and time
since its previous transaction (bursts), its mean or max amount over the last day
(bursts), its distinct merchants over the last hour (card testing).

**Out of order.** A fraction ``late_fraction`` (default 2%) of events arrive late: each is
delivered 2-30 s after its ``time``, so its ``time`` is earlier than the events just
before it. No event's ``time`` is ever more than 30 s behind the largest ``time`` already
delivered, so an allowed lateness of one minute loses nothing.

The same ``seed`` gives the same events; only :mod:`random` is used.

Examples
--------
>>> events = list(generate(1000, seed=7))
>>> list(events[0])
['tx_id', 'card', 'merchant', 'amount', 'time', 'is_fraud']
>>> events == list(generate(1000, seed=7)), events == list(generate(1000, seed=8))
(True, False)
>>> frame(1000, seed=7).columns.tolist() == list(events[0])
True
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "EVENT_ID_FIELD",
    "FEATURES",
    "KEY_FIELD",
    "LABEL_FIELD",
    "TIME_FIELD",
    "frame",
    "generate",
]

FEATURES = {"amount": "numeric", "merchant": "categorical"}
KEY_FIELD = "card"
TIME_FIELD = "time"
LABEL_FIELD = "is_fraud"
EVENT_ID_FIELD = "tx_id"
COLUMNS = (EVENT_ID_FIELD, KEY_FIELD, "merchant", "amount", TIME_FIELD, LABEL_FIELD)

MEAN_GAP_MS = 500
FRAUD_RATE = 0.03

_GAP_SHAPE = 4.0  # per-card gaps: more regular than Poisson, as people's spending is
_FAVOURITE_SHARE = 0.85
_BURST_SIZE = (4, 8)
_BURST_GAP_MS = (5_000, 45_000)
_BURST_FACTOR = (3.0, 8.0)
_TESTING_SIZE = (10, 24)
_TESTING_SPAN_MS = 3_600_000
_TESTING_AMOUNT = (0.5, 5.0)
_LATE_DELAY_MS = (2_000, 30_000)

# A heap entry: (arrival ms, sequence, event time ms, card, amount, merchant, is_fraud,
# kind). The sequence breaks ties so entries never compare further. Each card always has
# one _LEGIT entry, its next payment, which schedules the one after it when it is due;
# a _LATE entry is a payment already due that is delivered at its (later) arrival.
_Entry = tuple[int, int, int, int, float, int, bool, int]
_LEGIT, _FRAUD, _LATE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Card:
    typical: float
    favourites: tuple[int, ...]
    mean_gap_ms: float


class _Simulation:
    """One run of the generator: the heap of due payments and the state of each card."""

    def __init__(self, rng: random.Random, cards: int, merchants: int, start_ms: int) -> None:
        self.rng = rng
        self.merchants = merchants
        self.heap: list[_Entry] = []
        self.sequence = 0
        self.busy_until = [0] * cards  # a card is compromised by one fraudster at a time
        self.card_testing = False
        self.next_episode = self._spacing()  # index of the event after which one starts
        self.cards = [self._new_card(cards) for _ in range(cards)]
        for index, card in enumerate(self.cards):
            self._schedule_legit(index, start_ms + rng.uniform(0, card.mean_gap_ms))

    def _new_card(self, cards: int) -> _Card:
        rng = self.rng
        favourites = rng.sample(range(self.merchants), min(rng.randint(2, 5), self.merchants))
        return _Card(
            typical=rng.lognormvariate(math.log(40.0), 1.0),
            favourites=tuple(favourites),
            mean_gap_ms=cards * MEAN_GAP_MS / rng.uniform(0.6, 1.4),
        )

    def push(self, arrival: float, time: float, card: int, amount: float, merchant: int,
             is_fraud: bool, kind: int) -> None:
        self.sequence += 1
        entry = (int(arrival), self.sequence, int(time), card, amount, merchant, is_fraud, kind)
        heapq.heappush(self.heap, entry)

    def _schedule_legit(self, index: int, time: float) -> None:
        card, rng = self.cards[index], self.rng
        if rng.random() < _FAVOURITE_SHARE:
            merchant = rng.choice(card.favourites)
        else:
            merchant = rng.randrange(self.merchants)
        amount = max(0.01, round(card.typical * rng.lognormvariate(0.0, 0.35), 2))
        self.push(time, time, index, amount, merchant, False, _LEGIT)

    def pop(self) -> _Entry:
        """The next entry due, after scheduling what it implies (the card's next payment)."""
        entry = heapq.heappop(self.heap)
        if entry[7] == _LEGIT:
            index = entry[3]
            gap = self.rng.gammavariate(_GAP_SHAPE, self.cards[index].mean_gap_ms / _GAP_SHAPE)
            self._schedule_legit(index, entry[2] + gap)
        return entry

    def _spacing(self) -> float:
        """Events until the next episode starts, so that about FRAUD_RATE of events are fraud.

        Jittered rather than geometric, so the rate holds steady over a few thousand events.
        """
        low, high = _TESTING_SIZE if self.card_testing else _BURST_SIZE
        mean_spacing = (1 - FRAUD_RATE) * (low + high) / 2 / FRAUD_RATE
        return self.rng.uniform(0.5, 1.5) * mean_spacing

    def after(self, index: int, now: int) -> None:
        """Start a fraud episode if one is due after event ``index``, delivered at ``now``."""
        if index >= self.next_episode:
            self.next_episode += self._spacing()
            self._compromise(now + self.rng.uniform(0, 60_000), now)

    def drift(self, index: int, now: int) -> None:
        """Switch to card testing before event ``index``, sharply.

        Bursts not yet delivered are dropped, and the card-testing episodes that would have
        started in the last hour are already under way, so the fraud rate does not dip.
        """
        self.heap = [entry for entry in self.heap if not entry[6]]
        heapq.heapify(self.heap)
        self.busy_until = [0] * len(self.busy_until)
        self.card_testing = True
        self.next_episode = index + self._spacing()
        low, high = _TESTING_SIZE
        mean_spacing = (1 - FRAUD_RATE) * (low + high) / 2 / FRAUD_RATE
        under_way = round(_TESTING_SPAN_MS / (MEAN_GAP_MS * mean_spacing))
        for number in range(under_way):
            offset = _TESTING_SPAN_MS * (number + self.rng.random()) / under_way
            self._compromise(now - offset, now)

    def _compromise(self, start: float, now: int) -> None:
        """One fraud episode from ``start`` on a card no fraudster holds; none before ``now``."""
        for _ in range(5):
            index = self.rng.randrange(len(self.cards))
            if self.busy_until[index] <= now:
                episode = self._card_testing if self.card_testing else self._burst
                self.busy_until[index] = episode(index, start, now)
                return

    def _burst(self, index: int, start: float, now: int) -> int:
        rng, typical = self.rng, self.cards[index].typical
        time = start
        for _ in range(rng.randint(*_BURST_SIZE)):
            amount = round(typical * rng.uniform(*_BURST_FACTOR), 2)
            self.push(time, time, index, amount, rng.randrange(self.merchants), True, _FRAUD)
            time += rng.uniform(*_BURST_GAP_MS)
        return int(time)

    def _card_testing(self, index: int, start: float, now: int) -> int:
        rng = self.rng
        size = min(rng.randint(*_TESTING_SIZE), self.merchants)
        offsets = sorted(rng.uniform(0, _TESTING_SPAN_MS) for _ in range(size))
        for offset, merchant in zip(offsets, rng.sample(range(self.merchants), size),
                                    strict=True):
            amount = round(rng.uniform(*_TESTING_AMOUNT), 2)
            if start + offset >= now:
                self.push(start + offset, start + offset, index, amount, merchant, True, _FRAUD)
        return int(start + _TESTING_SPAN_MS)


def generate(
    n: int,
    seed: int = 42,
    *,
    cards: int = 2000,
    merchants: int = 300,
    drift_at: int | None = None,
    late_fraction: float = 0.02,
    start_ms: int = 1_767_225_600_000,
) -> Iterator[dict[str, Any]]:
    """``n`` card payments in arrival order; fraud patterns as in the module docstring.

    ``drift_at`` (default ``n // 2``) is the index of the first event after the switch
    from bursts to card testing; ``late_fraction`` of events arrive 2-30 s late;
    ``start_ms`` is the event time the stream starts at (2026-01-01T00:00Z). With the
    same seed and ``drift_at``, a shorter stream is the start of a longer one.
    """
    if n < 0 or cards < 1 or merchants < 1:
        raise ValueError(f"need n >= 0, cards >= 1, merchants >= 1 (got {n}, {cards}, "
                         f"{merchants})")
    if drift_at is not None and drift_at < 0:
        raise ValueError(f"drift_at must be >= 0 (got {drift_at})")
    if not 0.0 <= late_fraction < 1.0:
        raise ValueError(f"late_fraction must be in [0, 1) (got {late_fraction})")
    return _events(n, random.Random(seed), cards, merchants,
                   n // 2 if drift_at is None else drift_at, late_fraction, start_ms)


def _events(n: int, rng: random.Random, cards: int, merchants: int, drift_at: int,
            late_fraction: float, start_ms: int) -> Iterator[dict[str, Any]]:
    simulation = _Simulation(rng, cards, merchants, start_ms)
    card_names = [f"c{index}" for index in range(cards)]
    merchant_names = [f"m{index}" for index in range(merchants)]
    random_ = rng.random
    arrival = start_ms
    for index in range(n):
        if index == drift_at:
            simulation.drift(index, arrival)
        arrival, _, time, card, amount, merchant, is_fraud, kind = simulation.pop()
        while kind != _LATE and random_() < late_fraction:
            # Held back: it comes off the heap again as a _LATE entry at its arrival.
            simulation.push(time + rng.uniform(*_LATE_DELAY_MS), time, card, amount, merchant,
                            is_fraud, _LATE)
            arrival, _, time, card, amount, merchant, is_fraud, kind = simulation.pop()
        simulation.after(index, arrival)
        yield {
            "tx_id": f"tx-{index}",
            "card": card_names[card],
            "merchant": merchant_names[merchant],
            "amount": amount,
            "time": time,
            "is_fraud": is_fraud,
        }


def frame(n: int, seed: int = 42, **kwargs: Any) -> pd.DataFrame:
    """The events of :func:`generate` as a DataFrame, one column per field in event order."""
    import pandas as pd

    return pd.DataFrame.from_records(list(generate(n, seed, **kwargs)), columns=list(COLUMNS))
