from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.bill import Bill
from ...models.create_bill_request import CreateBillRequest
from ...models.error import Error
from ...types import Response


def _get_kwargs(
    bill_id: str,
    *,
    body: CreateBillRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/partner/bill/v1/bills/{bill_id}".format(
            bill_id=quote(str(bill_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Bill | Error | None:
    if response.status_code == 200:
        response_200 = Bill.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = cast(Any, None)
        return response_401

    if response.status_code == 409:
        response_409 = Error.from_dict(response.json())

        return response_409

    if response.status_code == 415:
        response_415 = Error.from_dict(response.json())

        return response_415

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Bill | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    bill_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: CreateBillRequest,
) -> Response[Any | Bill | Error]:
    """Issue a bill

     Issues a bill with the merchant-chosen `billId` and returns it with a `payUrl` for the
    customer. Repeating the call with the same `billId` returns the stored bill unchanged, in
    its current status (QIWI's successor API calls this "logically idempotent" [doc, successor];
    for v1 it is inferred). A strict server may answer 409 when the repeated body differs.

    Args:
        bill_id (str):
        body (CreateBillRequest): Body of `PUT /partner/bill/v1/bills/{billId}`. Unknown fields
            are ignored. An optional member
            sent as `null` is the same as one left out (what the Java and .NET SDKs send); a required
            one
            sent as `null` is refused like a missing one (400 `validation.error`, "must not be null").

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Bill | Error]
    """

    kwargs = _get_kwargs(
        bill_id=bill_id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    bill_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: CreateBillRequest,
) -> Any | Bill | Error | None:
    """Issue a bill

     Issues a bill with the merchant-chosen `billId` and returns it with a `payUrl` for the
    customer. Repeating the call with the same `billId` returns the stored bill unchanged, in
    its current status (QIWI's successor API calls this "logically idempotent" [doc, successor];
    for v1 it is inferred). A strict server may answer 409 when the repeated body differs.

    Args:
        bill_id (str):
        body (CreateBillRequest): Body of `PUT /partner/bill/v1/bills/{billId}`. Unknown fields
            are ignored. An optional member
            sent as `null` is the same as one left out (what the Java and .NET SDKs send); a required
            one
            sent as `null` is refused like a missing one (400 `validation.error`, "must not be null").

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Bill | Error
    """

    return sync_detailed(
        bill_id=bill_id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    bill_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: CreateBillRequest,
) -> Response[Any | Bill | Error]:
    """Issue a bill

     Issues a bill with the merchant-chosen `billId` and returns it with a `payUrl` for the
    customer. Repeating the call with the same `billId` returns the stored bill unchanged, in
    its current status (QIWI's successor API calls this "logically idempotent" [doc, successor];
    for v1 it is inferred). A strict server may answer 409 when the repeated body differs.

    Args:
        bill_id (str):
        body (CreateBillRequest): Body of `PUT /partner/bill/v1/bills/{billId}`. Unknown fields
            are ignored. An optional member
            sent as `null` is the same as one left out (what the Java and .NET SDKs send); a required
            one
            sent as `null` is refused like a missing one (400 `validation.error`, "must not be null").

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Bill | Error]
    """

    kwargs = _get_kwargs(
        bill_id=bill_id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    bill_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: CreateBillRequest,
) -> Any | Bill | Error | None:
    """Issue a bill

     Issues a bill with the merchant-chosen `billId` and returns it with a `payUrl` for the
    customer. Repeating the call with the same `billId` returns the stored bill unchanged, in
    its current status (QIWI's successor API calls this "logically idempotent" [doc, successor];
    for v1 it is inferred). A strict server may answer 409 when the repeated body differs.

    Args:
        bill_id (str):
        body (CreateBillRequest): Body of `PUT /partner/bill/v1/bills/{billId}`. Unknown fields
            are ignored. An optional member
            sent as `null` is the same as one left out (what the Java and .NET SDKs send); a required
            one
            sent as `null` is refused like a missing one (400 `validation.error`, "must not be null").

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Bill | Error
    """

    return (
        await asyncio_detailed(
            bill_id=bill_id,
            client=client,
            body=body,
        )
    ).parsed
