from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error import Error
from ...models.refund import Refund
from ...types import Response


def _get_kwargs(
    bill_id: str,
    refund_id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/partner/bill/v1/bills/{bill_id}/refunds/{refund_id}".format(
            bill_id=quote(str(bill_id), safe=""),
            refund_id=quote(str(refund_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Error | Refund | None:
    if response.status_code == 200:
        response_200 = Refund.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Error.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = cast(Any, None)
        return response_401

    if response.status_code == 404:
        response_404 = Error.from_dict(response.json())

        return response_404

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | Error | Refund]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    bill_id: str,
    refund_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Any | Error | Refund]:
    """Read a refund and its status

    Args:
        bill_id (str):
        refund_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Error | Refund]
    """

    kwargs = _get_kwargs(
        bill_id=bill_id,
        refund_id=refund_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    bill_id: str,
    refund_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Any | Error | Refund | None:
    """Read a refund and its status

    Args:
        bill_id (str):
        refund_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Error | Refund
    """

    return sync_detailed(
        bill_id=bill_id,
        refund_id=refund_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    bill_id: str,
    refund_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Any | Error | Refund]:
    """Read a refund and its status

    Args:
        bill_id (str):
        refund_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Error | Refund]
    """

    kwargs = _get_kwargs(
        bill_id=bill_id,
        refund_id=refund_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    bill_id: str,
    refund_id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Any | Error | Refund | None:
    """Read a refund and its status

    Args:
        bill_id (str):
        refund_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Error | Refund
    """

    return (
        await asyncio_detailed(
            bill_id=bill_id,
            refund_id=refund_id,
            client=client,
        )
    ).parsed
