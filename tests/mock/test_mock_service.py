"""The service facade (the state machine, the rules it applies) and its storage, without HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from mock_helpers import OTHER_SITE, SITE, FakeClock, make_settings, sequential_ids

from qiwi_bill_mock import dbfile, service as service_module
from qiwi_bill_mock.context import GroupCommit
from qiwi_bill_mock.errors import (
    BillConflict,
    BillNotFound,
    IncorrectRefundAmount,
    InvalidValues,
    RefundConflict,
    WrongBillStatus,
)
from qiwi_bill_mock.models import Attempt, BillDraft
from qiwi_bill_mock.notifier import RetryPolicy
from qiwi_bill_mock.service import BillService as Store
from qiwi_bill_mock.storage import DatabaseInUse
from qiwi_bill_mock.validation import draft_from_body, load_validators, parse_expiration
from qiwi_bill_mock.wire import bill_to_wire, format_timestamp, to_micros

DraftInvalid = InvalidValues


def draft(clock: FakeClock, *, amount: str = "10.00", days: float = 1, currency: str = "RUB", **kw) -> BillDraft:
    expiration = clock() + timedelta(days=days)
    return BillDraft(
        amount=Decimal(amount),
        currency=currency,
        expiration=expiration,
        expiration_text=expiration.isoformat(),
        **kw,
    )


@pytest.fixture
def store(clock: FakeClock) -> Store:
    return Store(make_settings(notify_url="http://merchant.test/notify"), clock=clock, id_factory=sequential_ids())


def test_exported_names() -> None:
    assert set(service_module.__all__) <= set(dir(service_module))


def test_create_then_get_returns_waiting_bill(store: Store, clock: FakeClock) -> None:
    bill, created = store.create_bill(SITE, "b1", draft(clock, comment="hi", customer={"phone": "79123456789"}))
    assert created
    assert bill.status == "WAITING"
    assert bill.created_us == bill.changed_us == to_micros(clock())
    assert bill.invoice_uid == "00000000-0000-0000-0000-000000000001"
    assert store.get_bill(SITE, "b1") == bill
    assert store.get_bill_by_invoice_uid(bill.invoice_uid) == bill


def test_repeated_create_returns_stored_bill_unchanged(store: Store, clock: FakeClock) -> None:
    first, _ = store.create_bill(SITE, "b1", draft(clock))
    clock.advance(5)
    again, created = store.create_bill(SITE, "b1", draft(clock, amount="99.00"))
    assert not created
    assert again == first


def test_strict_idempotency_refuses_a_different_body(clock: FakeClock) -> None:
    strict = Store(make_settings(strict_idempotency=True), clock=clock)
    body = draft(clock)
    strict.create_bill(SITE, "b1", body)
    assert strict.create_bill(SITE, "b1", body)[1] is False
    with pytest.raises(BillConflict):
        strict.create_bill(SITE, "b1", draft(clock, amount="11.00"))
    with pytest.raises(BillConflict):  # any member of the body counts, the customer too
        strict.create_bill(SITE, "b1", draft(clock, customer={"phone": "79000000000"}))


def test_merchants_are_isolated(store: Store, clock: FakeClock) -> None:
    store.create_bill(SITE, "b1", draft(clock))
    assert store.get_bill(OTHER_SITE, "b1") is None
    with pytest.raises(BillNotFound):
        store.pay_bill(OTHER_SITE, "b1")
    other, created = store.create_bill(OTHER_SITE, "b1", draft(clock, amount="3.00"))
    assert created
    assert other.amount == Decimal("3.00")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": "0"}, "amount.value"),
        ({"amount": "1000000"}, "amount.value"),
        ({"amount": "1.001"}, "amount.value"),
        ({"currency": "USD"}, "amount.currency"),
        ({"days": -1}, "expirationDateTime"),
        ({"comment": "x" * 256}, "comment"),
        ({"custom_fields": {"k": "v" * 256}}, "customFields.k"),
    ],
)
def test_invalid_drafts_are_refused_before_anything_is_stored(store: Store, clock: FakeClock, kwargs, field) -> None:
    with pytest.raises(DraftInvalid) as info:
        store.create_bill(SITE, "b1", draft(clock, **kwargs))
    assert field in info.value.cause
    assert store.get_bill(SITE, "b1") is None


def test_pay_reject_expire_transitions(store: Store, clock: FakeClock) -> None:
    for bill_id in ("paid", "rejected", "expired"):
        store.create_bill(SITE, bill_id, draft(clock))
    clock.advance(1.5)
    paid = store.pay_bill(SITE, "paid", pay_source="card")
    assert (paid.status, paid.pay_source) == ("PAID", "card")
    assert paid.changed_us == to_micros(clock())
    assert store.pay_bill(SITE, "paid") == paid  # idempotent
    rejected = store.reject_bill(SITE, "rejected")
    assert rejected.status == "REJECTED"
    assert store.reject_bill(SITE, "rejected") == rejected  # a REJECTED bill returns itself
    assert store.expire_bill(SITE, "expired").status == "EXPIRED"
    for action in (store.reject_bill, store.expire_bill):
        with pytest.raises(WrongBillStatus) as info:
            action(SITE, "paid")
        assert info.value.status == "PAID"
    with pytest.raises(WrongBillStatus):
        store.pay_bill(SITE, "rejected")
    with pytest.raises(WrongBillStatus):
        store.reject_bill(SITE, "expired")
    with pytest.raises(InvalidValues, match="paySource"):
        store.pay_bill(SITE, "paid", pay_source="bitcoin")


def test_expiry_is_lazy_on_read_and_swept(store: Store, clock: FakeClock) -> None:
    store.create_bill(SITE, "read", draft(clock, days=1))
    store.create_bill(SITE, "swept", draft(clock, days=1))
    store.create_bill(SITE, "later", draft(clock, days=3))
    clock.advance(86400)
    bill = store.get_bill(SITE, "read")
    assert bill is not None
    assert bill.status == "EXPIRED"
    # changedDateTime = expirationDateTime, as the successor's EXPIRED example shows.
    assert bill.changed_us == bill.expires_us
    assert store.sweep_expired() == 1
    assert store.get_bill(SITE, "swept").status == "EXPIRED"  # type: ignore[union-attr]
    assert store.get_bill(SITE, "later").status == "WAITING"  # type: ignore[union-attr]
    with pytest.raises(WrongBillStatus):
        store.pay_bill(SITE, "read")


def test_expiry_lag_is_scaled(clock: FakeClock) -> None:
    lagging = Store(make_settings(expiry_lag=600, time_scale=0.1), clock=clock)
    lagging.create_bill(SITE, "b", draft(clock, days=1))
    clock.advance(86400 + 59)
    assert lagging.get_bill(SITE, "b").status == "WAITING"  # type: ignore[union-attr]
    clock.advance(1)
    assert lagging.get_bill(SITE, "b").status == "EXPIRED"  # type: ignore[union-attr]


def test_advance_clock_moves_the_mock_clock(store: Store, clock: FakeClock) -> None:
    before = store.now(SITE)
    after = store.advance_clock(3600, site_id=SITE)
    assert after - before == timedelta(hours=1)
    with pytest.raises(InvalidValues, match="non-negative"):
        store.advance_clock(-1, site_id=SITE)
    store.reset(SITE)
    assert store.now(SITE) == clock()


def test_each_merchant_has_its_own_clock(store: Store, clock: FakeClock) -> None:
    store.create_bill(SITE, "a", draft(clock, days=1))
    store.create_bill(OTHER_SITE, "b", draft(clock, days=1))
    store.advance_clock(2 * 86400, site_id=OTHER_SITE)
    assert store.now(OTHER_SITE) - store.now(SITE) == timedelta(days=2)
    assert store.now(SITE) == store.now() == clock()  # nobody moved SITE's clock: it runs on the injected one
    assert store.sweep_expired() == 1
    assert store.get_bill(OTHER_SITE, "b").status == "EXPIRED"  # type: ignore[union-attr]
    assert store.get_bill(SITE, "a").status == "WAITING"  # type: ignore[union-attr]
    # "In the future" is checked on the merchant's own clock.
    with pytest.raises(InvalidValues, match="expirationDateTime"):
        store.create_bill(OTHER_SITE, "c", draft(clock, days=1))
    store.create_bill(SITE, "c", draft(clock, days=1))
    store.reset(OTHER_SITE)
    assert store.now(OTHER_SITE) == clock()


def test_refunds_partial_then_full(store: Store, clock: FakeClock) -> None:
    store.create_bill(SITE, "b", draft(clock, amount="10.00"))
    with pytest.raises(WrongBillStatus):
        store.create_refund(SITE, "b", "r0", amount=Decimal("1.00"), currency="RUB")
    store.pay_bill(SITE, "b")
    first, created = store.create_refund(SITE, "b", "r1", amount=Decimal("4.00"), currency="RUB")
    assert (first.status, created) == ("PARTIAL", True)
    assert store.create_refund(SITE, "b", "r1", amount=Decimal("4.00"), currency="RUB") == (first, False)
    with pytest.raises(RefundConflict):
        store.create_refund(SITE, "b", "r1", amount=Decimal("5.00"), currency="RUB")
    with pytest.raises(IncorrectRefundAmount, match="exceeds"):
        store.create_refund(SITE, "b", "r2", amount=Decimal("6.01"), currency="RUB")
    with pytest.raises(IncorrectRefundAmount, match="currency"):
        store.create_refund(SITE, "b", "r2", amount=Decimal("1.00"), currency="KZT")
    last, _ = store.create_refund(SITE, "b", "r2", amount=Decimal("6.00"), currency="RUB")
    assert last.status == "FULL"
    with pytest.raises(IncorrectRefundAmount):
        store.create_refund(SITE, "b", "r3", amount=Decimal("0.01"), currency="RUB")
    assert store.get_refund(SITE, "b", "r1") == first
    assert store.get_refund(SITE, "b", "r2") == last
    assert store.get_refund(SITE, "b", "nope") is None
    with pytest.raises(BillNotFound):
        store.create_refund(SITE, "nope", "r", amount=Decimal("1"), currency="RUB")


def test_paying_queues_one_notification_in_the_same_transaction(store: Store, clock: FakeClock) -> None:
    woken: list[bool] = []
    store.add_outbox_listener(lambda: woken.append(True))
    store.create_bill(SITE, "b", draft(clock))
    store.reject_bill(SITE, "b")  # REJECTED does not notify by default (only PAID is documented)
    store.create_bill(SITE, "p", draft(clock))
    store.pay_bill(SITE, "p")
    store.pay_bill(SITE, "p")
    deliveries = store.list_deliveries(SITE)
    assert [(d["billId"], d["status"], d["state"]) for d in deliveries] == [("p", "PAID", "pending")]
    assert woken == [True]
    claimed = store.claim_due_deliveries()
    assert len(claimed) == 1
    assert store.claim_due_deliveries() == []  # leased
    assert b'"version":"1"' in claimed[0].body


def test_retry_schedule_then_failure(clock: FakeClock) -> None:
    store = Store(
        make_settings(notify_url="http://m.test/n", retry_schedule=(60.0, 120.0), time_scale=0.5), clock=clock
    )
    store.create_bill(SITE, "p", draft(clock))
    store.pay_bill(SITE, "p")
    policy = RetryPolicy.from_settings(store.settings)  # the notifier's policy: it decides, the service records
    for expected_delay in (30, 60):
        (delivery,) = store.claim_due_deliveries()
        outcome, retry_in_us = policy.verdict(delivery.attempts + 1, 500)
        assert (outcome, retry_in_us) == ("pending", expected_delay * 1_000_000)
        attempt = Attempt(started_us=to_micros(clock()), status_code=500, latency_ms=1.0, error="HTTP 500")
        store.record_attempt(delivery, attempt, outcome=outcome, retry_in_us=retry_in_us)
        assert store.claim_due_deliveries() == []
        clock.advance(expected_delay)
    (delivery,) = store.claim_due_deliveries()
    assert policy.verdict(delivery.attempts + 1, None) == ("failed", 0)
    assert policy.verdict(1, 200) == ("delivered", 0)
    failed = Attempt(started_us=to_micros(clock()), status_code=None, latency_ms=2.0, error="boom")
    store.record_attempt(delivery, failed, outcome="failed")
    (record,) = store.list_deliveries(SITE)
    assert record["state"] == "failed"
    assert [a["statusCode"] for a in record["attempts"]] == [500, 500, None]
    assert record["attempts"][2]["error"] == "boom"


def test_file_database_survives_reopen(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(db_path=str(tmp_path / "mock.db"), notify_url="http://m.test/n")
    first = Store(settings, clock=clock)
    first.create_bill(SITE, "b", draft(clock))
    first.pay_bill(SITE, "b")
    first.close()
    second = Store(settings, clock=clock)
    assert second.get_bill(SITE, "b").status == "PAID"  # type: ignore[union-attr]
    assert len(second.claim_due_deliveries()) == 1


def test_concurrent_workers_on_one_file_keep_the_invariants(tmp_path: Path, clock: FakeClock) -> None:
    # Several Store objects on one file behave like several worker processes (one connection each).
    settings = make_settings(db_path=str(tmp_path / "mock.db"))
    stores = [Store(settings, clock=clock) for _ in range(4)]
    stores[0].create_bill(SITE, "b", draft(clock, amount="10.00"))
    stores[0].pay_bill(SITE, "b")
    created: list[bool] = []
    refunded: list[str] = []
    errors: list[Exception] = []

    def work(index: int) -> None:
        s = stores[index % len(stores)]
        created.append(s.create_bill(SITE, "same", draft(clock))[1])
        try:
            s.create_refund(SITE, "b", f"r{index}", amount=Decimal("1.00"), currency="RUB")
            refunded.append(f"r{index}")
        except IncorrectRefundAmount as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert created.count(True) == 1
    assert len(refunded) == 10
    assert len(errors) == 6
    assert stores[1].get_bill(SITE, "b").refunded == Decimal("10.00")  # type: ignore[union-attr]


def test_concurrent_reject_and_pay_end_in_one_final_status(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(db_path=str(tmp_path / "mock.db"))
    a, b = Store(settings, clock=clock), Store(settings, clock=clock)
    outcomes: list[str] = []
    for n in range(10):
        a.create_bill(SITE, f"b{n}", draft(clock))

    def act(s: Store, method: str, bill_id: str) -> None:
        try:
            outcomes.append(getattr(s, method)(SITE, bill_id).status)
        except WrongBillStatus as exc:
            outcomes.append(f"refused:{exc.status}")

    for n in range(10):
        threads = [
            threading.Thread(target=act, args=(a, "pay_bill", f"b{n}")),
            threading.Thread(target=act, args=(b, "reject_bill", f"b{n}")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = a.get_bill(SITE, f"b{n}").status  # type: ignore[union-attr]
        assert final in ("PAID", "REJECTED")
        assert outcomes[-2:].count(final) == 1


def test_wire_shape_and_key_order(store: Store, clock: FakeClock) -> None:
    expiration, with_fraction = parse_expiration("2030-04-13T14:30:00.123456789+05:00")
    assert with_fraction
    body = BillDraft(
        amount=Decimal("10"),
        currency="RUB",
        expiration=expiration,
        expiration_text="2030-04-13T14:30:00.123+05:00",
        customer={},
        custom_fields={"themeCode": "x"},
    )
    bill, _ = store.create_bill(SITE, "b", body)
    wire = bill_to_wire(bill, pay_url="http://mock.test/form/?invoice_uid=u")
    assert list(wire) == [
        "siteId",
        "billId",
        "amount",
        "status",
        "customFields",
        "creationDateTime",
        "expirationDateTime",
        "payUrl",
    ]
    assert wire["amount"] == {"currency": "RUB", "value": "10.00"}
    assert wire["creationDateTime"] == format_timestamp(to_micros(clock())) == "2026-03-01T12:00:00.000+03:00"


@pytest.mark.parametrize("text", ["2030-01-01T00:00:00", "0000-01-01T00:00:00Z", "x"])
def test_parse_expiration_refuses_what_qiwi_refused(text: str) -> None:
    with pytest.raises(InvalidValues, match="expirationDateTime"):
        parse_expiration(text)


@pytest.mark.parametrize("text", ["2030-01-01T00:00:00+0300", "2030-01-01T00:00:00+03", "2030-01-01 00:00:00Z"])
def test_the_spec_refuses_date_times_that_are_not_rfc_3339(text: str) -> None:
    body = {"amount": {"value": "1.00", "currency": "RUB"}, "expirationDateTime": text}
    with pytest.raises(InvalidValues, match="expirationDateTime"):
        draft_from_body(load_validators(), body)


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(min_value=-1439, max_value=1439),
    timespec=st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_parse_expiration_reads_the_common_shapes_exactly(moment: datetime, offset_minutes: int, timespec: str) -> None:
    micro = {"seconds": 0, "milliseconds": moment.microsecond // 1000 * 1000}.get(timespec, moment.microsecond)
    aware = moment.replace(microsecond=micro, tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = aware.isoformat(timespec=timespec)
    for spelling in (text, text.replace("T", "t")):
        parsed, fraction = parse_expiration(spelling)
        assert parsed == aware
        assert parsed.utcoffset() == timedelta(minutes=offset_minutes)
        assert fraction == (timespec != "seconds")


def test_a_naive_clock_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="naive"):
        Store(make_settings(), clock=lambda: datetime(2030, 1, 1))


# -- group commit, read cache, file ownership ---------------------------------------------------


def test_a_batch_commits_once_and_keeps_each_operations_outcome(tmp_path: Path, clock: FakeClock) -> None:
    store = Store(make_settings(db_path=str(tmp_path / "mock.db")), clock=clock)
    before = store.database.commits
    results = store.run_batch(
        [
            lambda: store.create_bill(SITE, "a", draft(clock)),
            lambda: store.create_bill(SITE, "bad", draft(clock, amount="0.00")),
            lambda: store.create_bill(SITE, "a", draft(clock, amount="99.00")),  # same billId in the same batch
            lambda: store.reject_bill(SITE, "missing"),
        ]
    )
    assert store.database.commits == before + 1
    (first, created), failed, (again, created_again), missing = results
    assert created
    assert not created_again
    assert again == first
    assert isinstance(failed, DraftInvalid)
    assert isinstance(missing, BillNotFound)
    assert store.get_bill(SITE, "bad") is None
    store.close()
    reopened = Store(make_settings(db_path=str(tmp_path / "mock.db")), clock=clock)
    assert reopened.get_bill(SITE, "a") == first


def test_an_operation_failing_after_its_writes_is_undone_alone(store: Store, clock: FakeClock) -> None:
    def half_done() -> None:
        store.create_bill(SITE, "half", draft(clock))
        raise RuntimeError("failed after writing")

    results = store.run_batch([lambda: store.create_bill(SITE, "kept", draft(clock)), half_done])
    assert isinstance(results[1], RuntimeError)
    assert store.get_bill(SITE, "kept") is not None
    assert store.get_bill(SITE, "half") is None


async def test_concurrent_writes_of_one_loop_pass_share_a_commit(clock: FakeClock) -> None:
    store = Store(make_settings(), clock=clock)
    group = GroupCommit(store)
    before = store.database.commits
    results = await asyncio.gather(
        *(group.run(lambda n=n: store.create_bill(SITE, f"b{n}", draft(clock))) for n in range(8)),
        group.run(lambda: store.reject_bill(SITE, "missing")),
        return_exceptions=True,
    )
    assert store.database.commits == before + 1
    assert all(created for _, created in results[:8])  # type: ignore[misc]
    assert isinstance(results[8], BillNotFound)


def test_cached_bill_versions_see_another_connections_commit(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(db_path=str(tmp_path / "mock.db"))
    reader, writer = Store(settings, clock=clock), Store(settings, clock=clock)
    bill, _ = writer.create_bill(SITE, "b", draft(clock))
    assert reader.bill_version(SITE, "b") == (bill.invoice_uid, "WAITING", bill.changed_us)
    clock.advance(1)
    paid = writer.pay_bill(SITE, "b")
    assert reader.bill_version(SITE, "b") == (bill.invoice_uid, "PAID", paid.changed_us)
    writer.reset(SITE)
    assert reader.bill_version(SITE, "b") is None


def test_an_owned_file_refuses_other_stores(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "mock.db")
    owner = Store(make_settings(db_path=path, db_owner=True), clock=clock)
    with pytest.raises(DatabaseInUse, match="owned by another"):
        Store(make_settings(db_path=path), clock=clock)
    with pytest.raises(DatabaseInUse, match="in use by another"):
        Store(make_settings(db_path=path, db_owner=True), clock=clock)
    bill, _ = owner.create_bill(SITE, "b", draft(clock))
    assert owner.bill_version(SITE, "b") == (bill.invoice_uid, "WAITING", bill.changed_us)
    owner.close()
    shared = Store(make_settings(db_path=path), clock=clock)  # free again once the owner closed
    with pytest.raises(DatabaseInUse, match="in use by another"):
        Store(make_settings(db_path=path, db_owner=True), clock=clock)
    assert shared.get_bill(SITE, "b") == bill


def test_the_wal_is_checkpointed_in_the_background(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbfile.Checkpointer, "INTERVAL", 0.5)
    path = tmp_path / "mock.db"
    store = Store(make_settings(db_path=str(path)), clock=clock)
    size = path.stat().st_size
    for n in range(300):
        store.create_bill(SITE, f"b{n}", draft(clock))
    # Commits never checkpoint themselves (wal_autocheckpoint is off): only the checkpointer thread can grow the file.
    deadline = time.monotonic() + 10
    while path.stat().st_size <= size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.stat().st_size > size
    store.close()


def _wal_checkpoint_sequence(wal: Path) -> int:
    # WAL header: magic, format version, page size, then the checkpoint sequence number, incremented each time the
    # WAL starts over (sqlite.org/fileformat2.html, "WAL File Format").
    return int.from_bytes(wal.read_bytes()[12:16], "big")


def test_the_wal_starts_over_under_continuous_writes(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PASSIVE checkpoints alone never catch up with a steady stream of commits, and the WAL then never starts over
    # (it grows without end); the checkpointer's RESTART makes it start over (here every half second).
    monkeypatch.setattr(dbfile.Checkpointer, "INTERVAL", 0.5)
    monkeypatch.setattr(dbfile.Checkpointer, "RESTART_FRAMES", 1000)
    path = tmp_path / "mock.db"
    store = Store(make_settings(db_path=str(path)), clock=clock)
    store.create_bill(SITE, "first", draft(clock))
    wal = Path(f"{path}-wal")
    sequence = _wal_checkpoint_sequence(wal)
    deadline = time.monotonic() + 3.0
    commits = 0
    while time.monotonic() < deadline:
        store.create_bill(SITE, f"b{commits}", draft(clock))
        commits += 1
    assert _wal_checkpoint_sequence(wal) >= sequence + 2
    store.close()


def test_notification_retries_follow_their_merchants_clock(clock: FakeClock) -> None:
    from mock_helpers import OTHER_SECRET, SECRET

    from qiwi_bill_mock import Merchant, Settings

    merchants = (
        Merchant(site_id=SITE, secret_key=SECRET, public_key="pk-main", notify_url="http://a.test/n"),
        Merchant(site_id=OTHER_SITE, secret_key=OTHER_SECRET, public_key="pk-other", notify_url="http://b.test/n"),
    )
    store = Store(Settings(merchants=merchants, retry_schedule=(600.0,)), clock=clock)
    policy = RetryPolicy.from_settings(store.settings)
    for site in (SITE, OTHER_SITE):
        store.create_bill(site, "p", draft(clock))
        store.pay_bill(site, "p")
    for delivery in store.claim_due_deliveries():
        outcome, retry_in_us = policy.verdict(1, 500)
        attempt = Attempt(started_us=to_micros(clock()), status_code=500, latency_ms=1.0, error="HTTP 500")
        store.record_attempt(delivery, attempt, outcome=outcome, retry_in_us=retry_in_us)
    assert store.claim_due_deliveries() == []
    store.advance_clock(600, site_id=OTHER_SITE)  # only B's retry falls due
    assert [d.site_id for d in store.claim_due_deliveries()] == [OTHER_SITE]
    # Seen from the real clock, A's retry is still 10 minutes away, B's is now.
    assert store.next_delivery_due() == clock() + timedelta(seconds=600)


def test_deliveries_are_claimed_round_robin_within_each_merchants_share(clock: FakeClock) -> None:
    """Issue 16, item 2: A's backlog never takes every slot; B's one delivery is claimed in the first round."""
    from mock_helpers import OTHER_SECRET, SECRET

    from qiwi_bill_mock import Merchant, Settings

    merchants = (
        Merchant(site_id=SITE, secret_key=SECRET, public_key="pk-main", notify_url="http://a.test/n"),
        Merchant(site_id=OTHER_SITE, secret_key=OTHER_SECRET, public_key="pk-other", notify_url="http://b.test/n"),
    )
    store = Store(Settings(merchants=merchants), clock=clock)
    for n in range(10):
        store.create_bill(SITE, f"a{n}", draft(clock))
        store.pay_bill(SITE, f"a{n}")
    store.create_bill(OTHER_SITE, "b0", draft(clock))
    store.pay_bill(OTHER_SITE, "b0")  # queued last, due last
    first = store.claim_due_deliveries(limit=3, per_site=4)
    assert [(d.site_id, d.bill_id) for d in first] == [(SITE, "a0"), (OTHER_SITE, "b0"), (SITE, "a1")]
    # Two of A's are in flight: A may have two more, however many are due and however many slots are free.
    more = store.claim_due_deliveries(limit=8, per_site=4, busy={SITE: 2})
    assert [d.bill_id for d in more] == ["a2", "a3"]
    assert store.claim_due_deliveries(limit=8, per_site=4, busy={SITE: 4}) == []


# The schema of the mock before issue 12 (814b20f): a file it wrote must open, read and write here.
_OLD_SCHEMA = """
CREATE TABLE bills (site_id TEXT NOT NULL, bill_id TEXT NOT NULL, invoice_uid TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL, amount TEXT NOT NULL, status TEXT NOT NULL, created_us INTEGER NOT NULL,
    changed_us INTEGER NOT NULL, expires_us INTEGER NOT NULL, expiration_text TEXT NOT NULL, details TEXT NOT NULL,
    pay_source TEXT, refunded TEXT NOT NULL DEFAULT '0.00', fingerprint TEXT NOT NULL,
    PRIMARY KEY (site_id, bill_id)) WITHOUT ROWID;
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, site_id TEXT NOT NULL, bill_id TEXT NOT NULL,
    event_status TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_us INTEGER NOT NULL, lease_until REAL NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_a_database_file_of_the_former_mock_opens_and_keeps_everything(tmp_path: Path, clock: FakeClock) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_SCHEMA)
    now_us = to_micros(clock())
    conn.execute(
        "INSERT INTO bills VALUES (?, 'old', 'uid-old', 'RUB', '12.50', 'PAID', ?, ?, ?, "
        "'2030-01-01T00:00:00+03:00', ?, 'card', '0.00', '')",
        (SITE, now_us, now_us, now_us + 86_400_000_000, '{"comment": null, "customer": {}, "customFields": {}}'),
    )
    conn.execute(
        "INSERT INTO outbox (site_id, bill_id, event_status, url, body, state, next_us, created_us) "
        "VALUES (?, 'old', 'PAID', 'http://m.test/n', x'7b7d', 'pending', ?, ?)",
        (SITE, now_us, now_us),
    )
    conn.execute("INSERT INTO meta VALUES ('clock_offset_us', 60000000)")
    conn.commit()
    conn.close()
    store = Store(make_settings(db_path=str(path), notify_url="http://m.test/n"), clock=clock)
    old = store.get_bill(SITE, "old")
    assert old is not None
    assert (old.status, old.amount, old.pay_source) == ("PAID", Decimal("12.50"), "card")
    assert store.now(SITE) == clock() + timedelta(seconds=60)  # the former shared clock, kept
    (delivery,) = store.claim_due_deliveries()
    assert delivery.notification["bill"]["amount"] == {"currency": "RUB", "value": "12.50"}
    store.create_bill(SITE, "new", draft(clock, days=2))
    assert store.create_refund(SITE, "old", "r1", amount=Decimal("2.50"), currency="RUB")[0].status == "PARTIAL"
    store.close()


@pytest.mark.parametrize(("value", "text"), [("10.00", "10.00"), ("10", "10.00"), ("1.5", "1.50"), ("0.10", "0.10")])
def test_amounts_are_spelled_with_two_decimals(value: str, text: str) -> None:
    from qiwi_bill_mock.wire import format_amount

    assert format_amount(Decimal(value)) == text
