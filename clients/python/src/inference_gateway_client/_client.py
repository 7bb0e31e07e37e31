"""GatewayClient: the gateway's RPCs with a deadline, the token, a request_id and typed errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc as pb_grpc

from inference_gateway_client._channel import channel_options
from inference_gateway_client._errors import error_from

__all__ = ["GatewayClient"]

_Request = TypeVar("_Request", pb.GenerateTextRequest, pb.GenerateImageRequest)


class GatewayClient:
    """One channel to the gateway; use as `async with GatewayClient(...) as client`.

    Every call gets a deadline (`deadline_seconds` from now, else `default_timeout`): the gateway
    cancels the prediction when it passes, so nothing runs that nobody reads. Calls that
    create a prediction get a fresh `request_id` when the request has none, which is what
    lets the channel retry them: a repeat attaches to the first attempt's prediction
    instead of starting (and billing) another.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        default_timeout: float = 300.0,
        retries: bool = True,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        all_options = [*channel_options(retries=retries), *options]
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=all_options)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=all_options)
        self._stub = pb_grpc.InferenceGatewayStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._default_timeout = default_timeout

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The underlying channel, for the Operations service or health checks."""
        return self._channel

    def _timeout(self, seconds: float | None) -> float:
        return self._default_timeout if seconds is None else seconds

    async def generate_text(
        self, request: pb.GenerateTextRequest, *, deadline_seconds: float | None = None
    ) -> pb.GenerateTextResponse:
        try:
            reply: pb.GenerateTextResponse = await self._stub.GenerateText(
                _with_request_id(request),
                timeout=self._timeout(deadline_seconds),
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as error:
            raise error_from(error) from None
        return reply

    async def stream_text(
        self, request: pb.GenerateTextRequest, *, deadline_seconds: float | None = None
    ) -> AsyncIterator[pb.StreamTextResponse]:
        """Text as the model produces it; the last message carries the prediction.

        gRPC retries a stream only until its first message arrives.
        """
        call = self._stub.StreamText(
            _with_request_id(request),
            timeout=self._timeout(deadline_seconds),
            metadata=self._metadata,
        )
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as error:
            raise error_from(error) from None
        finally:
            call.cancel()

    async def generate_image(
        self, request: pb.GenerateImageRequest, *, deadline_seconds: float | None = None
    ) -> pb.GenerateImageResponse:
        try:
            reply: pb.GenerateImageResponse = await self._stub.GenerateImage(
                _with_request_id(request),
                timeout=self._timeout(deadline_seconds),
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as error:
            raise error_from(error) from None
        return reply

    async def list_models(self, *, deadline_seconds: float | None = None) -> pb.ListModelsResponse:
        try:
            reply: pb.ListModelsResponse = await self._stub.ListModels(
                pb.ListModelsRequest(),
                timeout=self._timeout(deadline_seconds),
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as error:
            raise error_from(error) from None
        return reply


def _with_request_id(request: _Request) -> _Request:
    """A copy of `request` with a request_id (a UUID), keeping the caller's if set."""
    if request.request_id:
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.request_id = str(uuid.uuid4())
    return copy
