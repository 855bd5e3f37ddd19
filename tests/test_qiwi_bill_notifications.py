"""parse_notification and NotificationReceiver: verify, parse into the generated model, de-duplicate, reply."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from qiwi_bill import (
    ACK_BODY,
    MOSCOW_TZ,
    InvalidFieldError,
    InvalidNotificationError,
    InvalidSignatureError,
    MemorySeenStore,
    NotificationReceiver,
    NotificationReply,
    SeenStore,
    compute_signature,
    notification_key,
    parse_amount,
    parse_notification,
)
from qiwi_bill_client.models import BillNotification, BillStatusValue

SECRET = "test-merchant-secret-for-signature-check"
GOLDEN = "07e0ebb10916d97760c196034105d010607a6c6b7d72bfa1c3451448ac484a3b"


def p2p_sample(**bill_overrides: object) -> dict[str, object]:
    """The P2P docs' notification sample (docs/sources.md), on the golden-vector bill."""
    bill: dict[str, object] = {
        "siteId": "test",
        "billId": "test_bill",
        "amount": {"value": "1.00", "currency": "RUB"},
        "status": {"value": "PAID", "changedDateTime": "2021-01-18T15:25:18+03"},
        "customer": {"phone": "78710009999", "email": "test@example.com", "account": "454678"},
        "customFields": {"paySourcesFilter": "qw", "themeCode": "Yvan-YKaSh"},
        "comment": "Text comment",
        "creationDateTime": "2021-01-18T15:24:53+03",
        "expirationDateTime": "2025-12-10T09:02:00+03",
    }
    bill.update(bill_overrides)
    return {"bill": bill, "version": "1"}


def raw(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


# --- parse_notification -------------------------------------------------------------------------------------------


def test_parse_returns_the_generated_model_with_aware_datetimes():
    notification = parse_notification(raw(p2p_sample()), {"X-Api-Signature-SHA256": GOLDEN}, secret=SECRET)
    assert isinstance(notification, BillNotification)
    bill = notification.bill
    assert (bill.site_id, bill.bill_id, bill.status.value) == ("test", "test_bill", BillStatusValue.PAID)
    assert bill.amount.value == "1.00"
    assert parse_amount(bill.amount.value) == Decimal("1.00")
    assert bill.status.changed_date_time == datetime(2021, 1, 18, 15, 25, 18, tzinfo=MOSCOW_TZ)
    assert bill.creation_date_time.utcoffset() == timedelta(hours=3)
    assert bill.comment == "Text comment"
    assert notification.version == "1"


def test_parse_normalises_the_amount_to_the_signed_spelling():
    body = p2p_sample(amount={"value": 1, "currency": "RUB"})
    assert parse_notification(raw(body), GOLDEN, secret=SECRET).bill.amount.value == "1.00"


def test_parse_reads_the_kassa_sample_status_datetime_key_and_offsetless_dates():
    body = p2p_sample(
        status={"value": "PAID", "datetime": "2021-01-18T15:25:18"}, creationDateTime="2021-01-18T15:24:53"
    )
    bill = parse_notification(body, GOLDEN, secret=SECRET).bill
    assert bill.status.changed_date_time == datetime(2021, 1, 18, 12, 25, 18, tzinfo=UTC)
    assert bill.creation_date_time.tzinfo is not None


def test_parse_accepts_str_body_and_bare_bill():
    assert parse_notification(raw(p2p_sample()).decode(), GOLDEN, secret=SECRET).bill.bill_id == "test_bill"
    bare = p2p_sample()["bill"]
    assert parse_notification(bare, GOLDEN, secret=SECRET).version == "1"


def test_parse_keeps_unknown_fields():
    body = p2p_sample(recipientPhoneNumber="79000000000", CHECKOUT_REFERER="x")
    notification = parse_notification(body, GOLDEN, secret=SECRET)
    assert notification.bill.recipient_phone_number == "79000000000"
    assert notification.bill["CHECKOUT_REFERER"] == "x"


@pytest.mark.parametrize("header", [None, "", "foo", GOLDEN[:-1], "é" * 64, {}, {"x-other": GOLDEN}])
def test_parse_rejects_a_missing_or_malformed_header(header):
    with pytest.raises(InvalidSignatureError, match="header") as info:
        parse_notification(raw(p2p_sample()), header, secret=SECRET)
    assert not isinstance(info.value, InvalidNotificationError)


def test_parse_rejects_a_wrong_signature_without_leaking_secrets():
    with pytest.raises(InvalidSignatureError, match="does not match") as info:
        parse_notification(raw(p2p_sample(billId="other")), GOLDEN, secret=SECRET)
    assert SECRET not in str(info.value)
    assert GOLDEN not in str(info.value)


def test_parse_rejects_a_tampered_amount():
    with pytest.raises(InvalidSignatureError):
        parse_notification(raw(p2p_sample(amount={"value": "100.00", "currency": "RUB"})), GOLDEN, secret=SECRET)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (raw({"bill": {"siteId": "test"}}), "bill.amount"),
    ],
)
def test_parse_rejects_an_unreadable_body_naming_the_field(body, field):
    with pytest.raises(InvalidNotificationError) as info:
        parse_notification(body, GOLDEN, secret=SECRET)
    assert info.value.field == field


def signed(body: dict[str, object]) -> tuple[bytes, str]:
    return raw(body), compute_signature(body, secret=SECRET)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (p2p_sample(creationDateTime="yesterday"), "bill.creationDateTime"),
        (p2p_sample(status={"value": "PAID"}), "bill.status.changedDateTime"),
        (p2p_sample(expirationDateTime=None), "bill.expirationDateTime"),
        ({"bill": p2p_sample()["bill"]} | {"version": None}, "version"),
        (p2p_sample(status={"value": "PARTIAL", "changedDateTime": "2021-01-18T15:25:18+03"}), "bill"),
    ],
)
def test_parse_rejects_a_signed_body_that_does_not_fit_the_model(body, field):
    if field == "version":
        del body["version"]
    data, signature = signed(body)
    with pytest.raises(InvalidNotificationError) as info:
        parse_notification(data, signature, secret=SECRET)
    assert info.value.field == field
    assert isinstance(info.value, InvalidFieldError)


def test_parse_uses_hmac_compare_digest(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    parse_notification(raw(p2p_sample()), GOLDEN, secret=SECRET)
    assert calls == [(bytes.fromhex(GOLDEN), bytes.fromhex(GOLDEN))]


def test_parse_empty_secret_is_a_configuration_error():
    with pytest.raises(InvalidFieldError, match=r"^secret:"):
        parse_notification(raw(p2p_sample()), GOLDEN, secret="")


# --- receiver -----------------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.received: list[BillNotification] = []

    def __call__(self, notification: BillNotification) -> None:
        self.received.append(notification)


def test_receiver_acks_a_valid_notification_with_error_zero():
    handler = Recorder()
    receiver = NotificationReceiver(secret=SECRET, handler=handler)
    reply = receiver.handle(raw(p2p_sample()), {"x-api-signature-sha256": GOLDEN})
    assert (reply.status_code, reply.body, reply.ok, reply.duplicate) == (200, b'{"error":"0"}', True, False)
    assert json.loads(reply.body) == {"error": "0"}
    assert reply.headers["Content-Type"] == "application/json"
    assert [n.bill.bill_id for n in handler.received] == ["test_bill"]
    assert reply.notification is handler.received[0]


def test_receiver_skips_duplicates_but_still_acks():
    handler = Recorder()
    receiver = NotificationReceiver(secret=SECRET, handler=handler)
    first = receiver.handle(raw(p2p_sample()), GOLDEN)
    second = receiver.handle(raw(p2p_sample()), GOLDEN)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.status_code == 200
    assert second.body == ACK_BODY
    assert len(handler.received) == 1


def test_receiver_handles_a_new_status_of_the_same_bill():
    handler = Recorder()
    receiver = NotificationReceiver(secret=SECRET, handler=handler)
    receiver.handle(*signed(p2p_sample(status={"value": "WAITING", "changedDateTime": "2021-01-18T15:00:00+03"})))
    receiver.handle(*signed(p2p_sample()))
    assert [n.bill.status.value.value for n in handler.received] == ["WAITING", "PAID"]


def test_receiver_rejects_bad_signature_with_403_and_does_not_call_the_handler():
    handler = Recorder()
    receiver = NotificationReceiver(secret=SECRET, handler=handler)
    reply = receiver.handle(raw(p2p_sample()), "0" * 64)
    assert reply.status_code == 403
    assert not reply.ok
    assert reply.error is not None
    assert SECRET not in reply.error
    assert reply.notification is None
    assert handler.received == []


def test_receiver_rejects_unreadable_body_with_400():
    handler = Recorder()
    reply = NotificationReceiver(secret=SECRET, handler=handler).handle(b"{", GOLDEN)
    assert reply.status_code == 400
    assert handler.received == []


def test_receiver_does_not_remember_a_notification_whose_handler_failed():
    calls = []

    def flaky(notification: BillNotification) -> None:
        calls.append(notification)
        if len(calls) == 1:
            raise RuntimeError("database down")

    receiver = NotificationReceiver(secret=SECRET, handler=flaky)
    with pytest.raises(RuntimeError, match="database down"):
        receiver.handle(raw(p2p_sample()), GOLDEN)
    reply = receiver.handle(raw(p2p_sample()), GOLDEN)  # QIWI's retry
    assert reply.ok
    assert not reply.duplicate
    assert len(calls) == 2


def test_receiver_uses_a_pluggable_seen_store():
    class DictStore:
        def __init__(self) -> None:
            self.keys: set[str] = set()

        def seen(self, key: str) -> bool:
            return key in self.keys

        def mark(self, key: str) -> None:
            self.keys.add(key)

    store = DictStore()
    assert isinstance(store, SeenStore)
    receiver = NotificationReceiver(secret=SECRET, handler=Recorder(), seen_store=store)
    receiver.handle(raw(p2p_sample()), GOLDEN)
    assert store.keys == {'["test", "test_bill", "PAID"]'}
    assert receiver.handle(raw(p2p_sample()), GOLDEN).duplicate


def test_receiver_repr_hides_the_secret():
    receiver = NotificationReceiver(secret=SECRET, handler=Recorder())
    assert SECRET not in repr(receiver)
    assert "***" in repr(receiver)


def test_receiver_refuses_an_empty_secret_at_construction():
    with pytest.raises(InvalidFieldError, match=r"^secret:"):
        NotificationReceiver(secret="", handler=Recorder())


def test_sync_handle_refuses_an_async_handler_cleanly():
    async def handler(notification: BillNotification) -> None:
        return None

    receiver = NotificationReceiver(secret=SECRET, handler=handler)
    with pytest.raises(TypeError, match="handle_async"):
        receiver.handle(raw(p2p_sample()), GOLDEN)


async def test_handle_async_awaits_async_handler_and_async_store():
    received = []

    async def handler(notification: BillNotification) -> None:
        received.append(notification.bill.bill_id)

    class AsyncStore:
        def __init__(self) -> None:
            self.keys: set[str] = set()

        async def seen(self, key: str) -> bool:
            return key in self.keys

        async def mark(self, key: str) -> None:
            self.keys.add(key)

    receiver = NotificationReceiver(secret=SECRET, handler=handler, seen_store=AsyncStore())
    first = await receiver.handle_async(raw(p2p_sample()), {"X-Api-Signature-Sha256": GOLDEN})
    second = await receiver.handle_async(raw(p2p_sample()), GOLDEN)
    bad = await receiver.handle_async(raw(p2p_sample()), "f" * 64)
    assert (first.status_code, first.duplicate, second.duplicate, bad.status_code) == (200, False, True, 403)
    assert received == ["test_bill"]


async def test_handle_async_accepts_a_sync_handler():
    handler = Recorder()
    reply = await NotificationReceiver(secret=SECRET, handler=handler).handle_async(raw(p2p_sample()), GOLDEN)
    assert reply.ok
    assert len(handler.received) == 1


def test_sync_handle_refuses_an_async_store_cleanly():
    class AsyncStore:
        async def seen(self, key: str) -> bool:
            return False

        async def mark(self, key: str) -> None:
            return None

    receiver = NotificationReceiver(secret=SECRET, handler=Recorder(), seen_store=AsyncStore())
    with pytest.raises(TypeError, match="handle_async"):
        receiver.handle(raw(p2p_sample()), GOLDEN)


def test_reply_is_framework_neutral_data():
    reply = NotificationReply(200, ACK_BODY)
    assert reply.ok
    assert dict(reply.headers) == {"Content-Type": "application/json"}


def test_notification_key_is_unambiguous():
    a = parse_notification(*signed(p2p_sample(billId="a|b", siteId="c")), secret=SECRET)
    b = parse_notification(*signed(p2p_sample(billId="a", siteId="b|c")), secret=SECRET)
    assert notification_key(a) != notification_key(b)


# --- memory store -------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_forgets_after_ttl():
    clock = FakeClock()
    store = MemorySeenStore(ttl=60, clock=clock)
    store.mark("k")
    clock.now += 59
    assert store.seen("k")
    clock.now += 1
    assert not store.seen("k")
    assert len(store) == 0


def test_memory_store_is_bounded_evicting_the_oldest():
    store = MemorySeenStore(max_entries=2, clock=FakeClock())
    for key in ("a", "b", "c"):
        store.mark(key)
    assert len(store) == 2
    assert not store.seen("a")
    assert store.seen("b")
    assert store.seen("c")


def test_memory_store_remarking_refreshes_the_position():
    store = MemorySeenStore(max_entries=2, clock=FakeClock())
    store.mark("a")
    store.mark("b")
    store.mark("a")
    store.mark("c")
    assert store.seen("a")
    assert not store.seen("b")


def test_memory_store_defaults_outlive_qiwis_24_hour_retry_window():
    clock = FakeClock()
    store = MemorySeenStore(clock=clock)
    store.mark("k")
    clock.now += 24 * 3600 + 1
    assert store.seen("k")


@pytest.mark.parametrize(("kwargs", "field"), [({"max_entries": 0}, "max_entries"), ({"ttl": 0}, "ttl")])
def test_memory_store_rejects_silly_limits(kwargs, field):
    with pytest.raises(InvalidFieldError) as info:
        MemorySeenStore(**kwargs)
    assert info.value.field == field
