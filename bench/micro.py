"""Client-side measurements: generated-client overhead over raw httpx, and signature checks per second.

Both compare two ways of doing the same work in the same process, interleaved in rounds, and keep
the fastest round of each (the least disturbed by the other programs on a shared machine).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["best_ratio", "measure_client_overhead", "measure_signature", "paired_median_ratio"]

BILLS = "/partner/bill/v1/bills/"
CREATE = {"amount": {"currency": "RUB", "value": "10.00"}, "expirationDateTime": "2030-01-01T00:00:00+03:00"}


def paired_median_ratio(raw_times: list[float], other_times: list[float]) -> float:
    """Return the median of ``other / raw`` over rounds run back to back (robust to load swings).

    Raises:
        ValueError: If the lists are empty, of different lengths, or a raw time is not positive.
    """
    if not raw_times or len(raw_times) != len(other_times):
        raise ValueError("need one raw and one other timing per round")
    if min(raw_times) <= 0:
        raise ValueError("raw time must be positive")
    return statistics.median(o / r for r, o in zip(raw_times, other_times, strict=True))


def best_ratio(raw_times: list[float], other_times: list[float]) -> tuple[float, float, float]:
    """Return ``(best raw, best other, best other / best raw)`` from interleaved round timings.

    Raises:
        ValueError: If either list is empty or the best raw time is 0.
    """
    if not raw_times or not other_times:
        raise ValueError("no timings")
    raw, other = min(raw_times), min(other_times)
    if raw <= 0:
        raise ValueError("raw time must be positive")
    return raw, other, other / raw


def measure_client_overhead(
    base_url: str,
    token: str,
    *,
    get_bill_id: str,
    calls: int,
    async_calls: int,
    rounds: int,
    concurrency: int,
    prefix: str,
) -> dict[str, Any]:
    """Time the generated client against raw httpx making the same calls on the same server.

    Each round makes ``calls`` sync calls (``async_calls`` async ones, spread over ``concurrency`` tasks)
    each way, half GETs of one existing bill and half PUT-creates of new bills. Both ways share one
    ``httpx.Client`` (the generated client's own), so only the generated layer differs: building the
    request model, the request kwargs and parsing the response into attrs models. Raw httpx parses
    the JSON too (``response.json()``).

    Returns:
        ``{"sync": {...}, "async": {...}}`` with seconds per round, the median paired ratio generated / raw
        (``ratio``) and the ratio of the fastest rounds (``ratio_of_best``).
    """
    from qiwi_bill_client import AuthenticatedClient
    from qiwi_bill_client.api.bills import create_bill, get_bill
    from qiwi_bill_client.models import AmountRequest, CreateBillRequest

    expiry = datetime.datetime.fromisoformat(CREATE["expirationDateTime"])  # type: ignore[arg-type]
    counter = {"n": 0}

    def new_id(tag: str) -> str:
        counter["n"] += 1
        return f"{prefix}-{tag}-{counter['n']}"

    def model() -> CreateBillRequest:
        return CreateBillRequest(amount=AmountRequest(currency="RUB", value="10.00"), expiration_date_time=expiry)

    results: dict[str, Any] = {}
    with AuthenticatedClient(base_url=base_url, token=token) as client:
        http = client.get_httpx_client()
        get_path = BILLS + get_bill_id

        def raw_sync() -> None:
            for i in range(calls):
                if i % 2:
                    http.put(BILLS + new_id("raw"), json=CREATE).raise_for_status().json()
                else:
                    http.get(get_path).raise_for_status().json()

        def generated_sync() -> None:
            for i in range(calls):
                if i % 2:
                    bill = create_bill.sync(new_id("gen"), client=client, body=model())
                else:
                    bill = get_bill.sync(get_bill_id, client=client)
                if bill is None or not hasattr(bill, "bill_id"):
                    raise RuntimeError(f"generated client got {bill!r}")

        raw_times, gen_times = _interleave(raw_sync, generated_sync, rounds)
        raw, gen, best = best_ratio(raw_times, gen_times)
        results["sync"] = {
            "label": "sync, 1 connection",
            "calls": calls,
            "raw_s": raw,
            "generated_s": gen,
            "ratio": paired_median_ratio(raw_times, gen_times),
            "ratio_of_best": best,
            "raw_rounds_s": raw_times,
            "generated_rounds_s": gen_times,
        }

    async def run_async() -> tuple[list[float], list[float]]:
        async with AuthenticatedClient(base_url=base_url, token=token) as aclient:
            ahttp = aclient.get_async_httpx_client()
            per_task = max(1, async_calls // concurrency)

            async def raw_task() -> None:
                for i in range(per_task):
                    if i % 2:
                        (await ahttp.put(BILLS + new_id("araw"), json=CREATE)).raise_for_status().json()
                    else:
                        (await ahttp.get(get_path)).raise_for_status().json()

            async def gen_task() -> None:
                for i in range(per_task):
                    if i % 2:
                        bill = await create_bill.asyncio(new_id("agen"), client=aclient, body=model())
                    else:
                        bill = await get_bill.asyncio(get_bill_id, client=aclient)
                    if bill is None or not hasattr(bill, "bill_id"):
                        raise RuntimeError(f"generated client got {bill!r}")

            async def gather(task: Callable[[], Awaitable[None]]) -> float:
                started = time.perf_counter()
                await asyncio.gather(*(task() for _ in range(concurrency)))
                return time.perf_counter() - started

            await gather(raw_task)  # warm-up: opens the pool's connections
            raws, gens = [], []
            for index in range(rounds):  # AB BA AB ...: see _interleave
                if index % 2 == 0:
                    raws.append(await gather(raw_task))
                    gens.append(await gather(gen_task))
                else:
                    gens.append(await gather(gen_task))
                    raws.append(await gather(raw_task))
            return raws, gens

    raw_times, gen_times = asyncio.run(run_async())
    raw, gen, best = best_ratio(raw_times, gen_times)
    results["async"] = {
        "label": f"async, concurrency {concurrency}",
        "calls": max(1, async_calls // concurrency) * concurrency,
        "raw_s": raw,
        "generated_s": gen,
        "ratio": paired_median_ratio(raw_times, gen_times),
        "ratio_of_best": best,
        "raw_rounds_s": raw_times,
        "generated_rounds_s": gen_times,
    }
    return results


def _interleave(first: Callable[[], None], second: Callable[[], None], rounds: int) -> tuple[list[float], list[float]]:
    """Warm both up once, then time them alternately for ``rounds`` rounds.

    The order flips every round (AB BA AB ...), so a drift of the machine or the server within a
    round (a WAL checkpoint, a neighbour's burst) does not always fall on the same side.
    """
    first()
    second()
    a: list[float] = []
    b: list[float] = []
    for index in range(rounds):
        pair = ((first, a), (second, b))
        for func, sink in pair if index % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            func()
            sink.append(time.perf_counter() - started)
    return a, b


NOTIFICATION: dict[str, Any] = {
    "bill": {
        "siteId": "9hh4jb-00",
        "billId": "cc961e8d-d4d6-4f02-b737-2297e51fb48e",
        "amount": {"value": "1.00", "currency": "RUB"},
        "status": {"value": "PAID", "changedDateTime": "2021-01-18T15:25:18+03:00"},
        "customer": {"phone": "78710009999", "email": "test@tester.com", "account": "454678"},
        "customFields": {"paySourcesFilter": "qw", "themeCode": "Yvan-YKaSh"},
        "comment": "Text comment",
        "creationDateTime": "2021-01-18T15:24:53+03:00",
        "expirationDateTime": "2025-12-10T09:02:00+03:00",
    },
    "version": "1",
}


def measure_signature(*, loops: int, rounds: int) -> dict[str, Any]:
    """Time ``qiwi_bill.verify_signature`` against the bare HMAC compare on the same notification.

    The bare check gets the signed message already built as bytes: ``hmac.new(key, message,
    sha256).hexdigest()`` plus ``hmac.compare_digest``. ``verify_signature`` gets the decoded
    notification (a dict, as a web framework hands it over) and the header string, so it also
    extracts and checks the five fields and parses the hex header. The ratio is a cost ratio
    (time per call of verify_signature / time per call of the bare check).
    """
    from qiwi_bill import compute_signature, verify_signature

    secret = "bench-secret-key"
    key = secret.encode()
    bill = NOTIFICATION["bill"]
    message = (
        f"{bill['amount']['currency']}|{bill['amount']['value']}|{bill['billId']}|{bill['siteId']}"
        f"|{bill['status']['value']}"
    ).encode()
    header = compute_signature(NOTIFICATION, secret=secret)
    if hmac.new(key, message, hashlib.sha256).hexdigest() != header:
        raise RuntimeError("the bare HMAC and compute_signature disagree")
    raw_body = __import__("json").dumps(NOTIFICATION).encode()

    def bare() -> None:
        for _ in range(loops):
            hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), header)

    def verify() -> None:
        for _ in range(loops):
            verify_signature(NOTIFICATION, header, secret=secret)

    def verify_raw() -> None:
        for _ in range(loops):
            verify_signature(raw_body, header, secret=secret)

    if not verify_signature(NOTIFICATION, header, secret=secret) or not verify_signature(
        raw_body, header, secret=secret
    ):
        raise RuntimeError("verify_signature rejected a correct signature")
    bare_times, verify_times = _interleave(bare, verify, rounds)
    bare_s, verify_s, cost_ratio = best_ratio(bare_times, verify_times)
    _, raw_times = _interleave(bare, verify_raw, max(1, rounds // 2))
    return {
        "loops": loops,
        "bare_per_s": loops / bare_s,
        "verify_per_s": loops / verify_s,
        "verify_raw_body_per_s": loops / min(raw_times),
        "ratio": cost_ratio,
        "note": "verify_signature gets the decoded dict; from the raw JSON body (json.loads with Decimal "
        f"amounts included) it does {loops / min(raw_times):,.0f}/s.",
    }
