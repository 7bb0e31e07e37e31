"""Output files: which URLs the gateway fetches, with which credentials, and how many bytes.

The one rule of where output files may come from lives here (`FilePolicy`). A model's
output is text the model wrote, so a URL in it is vetted like any caller input before
the gateway connects to it with the organisation's Replicate token:

- Replicate's file hosts (`https://replicate.delivery` and its subdomains, port 443)
  are fetched with the token, as Replicate's spec asks.
- Replicate's API origin (the configured base URL) is never fetched for a file, so a
  model that answers `https://api.replicate.com/v1/account` gets nothing of the account.
- Origins the operator lists (`GATEWAY_OUTPUT_FILE_ORIGINS`, exact scheme://host:port)
  are fetched, with the token only when `GATEWAY_OUTPUT_FILE_TOKEN` says so.
- Anything else is refused before a connection opens. A redirect is one more URL: each
  hop is vetted by the same rule, at most `MAX_REDIRECTS` of them.

URLs are parsed strictly and the URL fetched is rebuilt from the parsed origin, so the
origin that was checked is the one that connects, whatever the HTTP library makes of
odd spellings.

Bytes are bounded three ways: one file (`GATEWAY_MAX_OUTPUT_FILE_BYTES`), one reply
(`GATEWAY_MAX_RESPONSE_BYTES`, which is also the server's gRPC send limit) and all calls
together (`GATEWAY_OUTPUT_BYTES_BUDGET`). Downloads stop at the first chunk that would
break one, and the bytes a call held go back to the budget however it ends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import mimetypes
import re
import string
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

from inference_gateway.deadlines import Deadline
from inference_gateway.domain import ImageOutput
from inference_gateway.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
    bad_response,
)
from inference_gateway.inputs import is_data_uri
from inference_gateway.replicate import Prediction, ReplicateClient

__all__ = [
    "MAX_REDIRECTS",
    "REPLICATE_FILE_HOST",
    "FilePolicy",
    "Origin",
    "OutputBudget",
    "OutputFetcher",
    "OutputLimits",
    "Refusal",
    "Target",
    "api_origin",
    "parse_origin",
]

REPLICATE_FILE_HOST = "replicate.delivery"
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNKNOWN_TYPE = "application/octet-stream"
# RFC 6838: a type and a subtype name of at most 127 characters each. A longer or odd
# type from upstream is not passed on, so an image's framing stays within this bound.
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(f"{_NAME}/{_NAME}")
# A reply's bytes besides the files: protobuf tags, lengths and the type per image, and
# the prediction summary.
_FRAMING_PER_IMAGE = 32 + 255
_SUMMARY_BYTES = 16 * 1024
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
# Characters a URL may hold; anything else (spaces, controls, backslashes, non-ASCII)
# is read differently by different libraries.
_URL_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


@dataclass(frozen=True, slots=True, order=True)
class Origin:
    """Scheme, host and port, in the one spelling the checks compare."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str, query: str) -> str:
        """A URL on this origin, spelled so every HTTP library reads the same origin."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{path or '/'}{'?' + query if query else ''}"


def _host(text: str) -> str | None:
    """The canonical host: lowercase, no trailing dot, IP literals in their plain form."""
    if text.startswith("["):
        if not text.endswith("]") or "%" in text:
            return None  # unbracketed, or an IPv6 zone id
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            return None
    host = text.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None  # empty labels, percent-encoding, underscores, anything odd
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        # Numeric: only a plain dotted quad, never inet_aton's `127.1` or `0x7f.1`.
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
    return host


def _split(url: str) -> tuple[Origin, str, str] | None:
    """(origin, path, query) of a plain http(s) URL; None for anything unusual."""
    if not url or not set(url) <= _URL_CHARS:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    netloc = parts.netloc
    if default_port is None or not netloc or "@" in netloc:
        return None  # user info is refused: libraries disagree on where it ends
    host_text, port = netloc, default_port
    bracket = netloc.rfind("]")
    colon = netloc.rfind(":")
    if colon > bracket:
        host_text, port_text = netloc[:colon], netloc[colon + 1 :]
        if _PORT.fullmatch(port_text) is None or int(port_text) > 65535:
            return None  # empty, signed, or with leading zeros
        port = int(port_text)
    host = _host(host_text)
    if host is None:
        return None
    return Origin(scheme, host, port), parts.path, parts.query


def parse_origin(text: str) -> Origin:
    """An operator's `scheme://host:port` (the port may be left out); ValueError otherwise."""
    split = _split(text.rstrip("/"))
    if split is None or split[1] or split[2] or "#" in text:
        raise ValueError(f"{text!r} is not an origin like https://files.example.com:443")
    return split[0]


@dataclass(frozen=True, slots=True)
class Target:
    """A URL the gateway may fetch, rebuilt from its checked origin."""

    url: str
    origin: Origin
    send_token: bool


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a URL is not fetched: `where` names the place, `why` says what rule it breaks."""

    where: str
    why: str


def api_origin(base_url: str) -> Origin:
    """The origin of Replicate's API, which gets the token; ValueError if it should not.

    Plain http would carry the token in the clear, so it is accepted only on loopback
    (the simulator, or a local egress proxy).
    """
    split = _split(base_url)
    if split is None:
        raise ValueError(f"{base_url!r} is not a plain https://host[:port][/path] URL")
    origin = split[0]
    if origin.scheme == "http" and not _loopback(origin.host):
        raise ValueError(
            f"{base_url!r} is plain http to a host other than this machine, so the Replicate "
            "token would cross the network in the clear; use https"
        )
    return origin


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FilePolicy:
    """The one rule of which URLs output files are fetched from, and which get the token."""

    def __init__(
        self, api_base_url: str, extra_origins: Iterable[Origin] = (), *, token_to_extra: bool
    ) -> None:
        self._api_origin = api_origin(api_base_url)
        self._extra = frozenset(extra_origins)
        self._token_to_extra = token_to_extra
        if self._api_origin in self._extra:
            raise ValueError(
                f"{self._api_origin} is Replicate's API origin (REPLICATE_BASE_URL); output "
                "files are never fetched from it, so it cannot be a GATEWAY_OUTPUT_FILE_ORIGINS"
            )
        in_clear = sorted(o for o in self._extra if o.scheme == "http" and not _loopback(o.host))
        if token_to_extra and in_clear:
            raise ValueError(
                f"{in_clear[0]} is plain http to a host other than this machine, so with "
                "GATEWAY_OUTPUT_FILE_TOKEN the Replicate token would cross the network in the "
                "clear; list it as https, or leave GATEWAY_OUTPUT_FILE_TOKEN off"
            )

    def vet(self, url: str) -> Target | Refusal:
        split = _split(url)
        if split is None:
            return Refusal("an unusual URL", "not a plain http(s) URL the gateway can read one way")
        origin, path, query = split
        if origin == self._api_origin:
            return Refusal(
                str(origin), "Replicate's API origin, which is never fetched for an output file"
            )
        if _on_replicate_files(origin):
            return Target(origin.url(path, query), origin, send_token=True)
        if origin in self._extra:
            return Target(origin.url(path, query), origin, send_token=self._token_to_extra)
        return Refusal(
            str(origin),
            f"neither https://{REPLICATE_FILE_HOST} (or a subdomain) nor an origin in "
            "GATEWAY_OUTPUT_FILE_ORIGINS",
        )


def _on_replicate_files(origin: Origin) -> bool:
    return (
        origin.scheme == "https"
        and origin.port == 443
        and (origin.host == REPLICATE_FILE_HOST or origin.host.endswith("." + REPLICATE_FILE_HOST))
    )


# --- bytes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """One file, one reply (the server's gRPC send limit), all calls together: settings.py."""

    max_file_bytes: int
    max_reply_bytes: int
    budget_bytes: int


class OutputBudget:
    """The bytes of output files all calls hold at once, within one process-wide limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class _Reply:
    """One reply's bytes, counted against its own limit; fetched bytes also against the budget."""

    def __init__(self, limits: OutputLimits, budget: OutputBudget, prediction_id: str) -> None:
        self._limits = limits
        self._budget = budget
        self.prediction_id = prediction_id
        self.size = _SUMMARY_BYTES
        self.held = 0

    def count_urls(self, uris: list[str]) -> None:
        """The URLs are part of the reply too, whether or not bytes come with them."""
        size = sum(len(uri) + _FRAMING_PER_IMAGE for uri in uris)
        self._check(size, "even as URLs only; ask the model for fewer outputs")
        self.size += size

    def charge(self, size: int) -> None:
        """Counts `size` fetched bytes; raises once the reply or the budget would overflow."""
        self._check(size, "call again without include_data to get their URLs only")
        if not self._budget.take(size):
            raise ResourceExhausted(
                f"the gateway is holding its budget of {self._budget.limit} bytes of output "
                "files for calls in flight (GATEWAY_OUTPUT_BYTES_BUDGET); retry shortly, or "
                f"call without include_data (prediction {self.prediction_id})",
                reason="OUTPUT_BYTES_BUDGET_EXHAUSTED",
                metadata={
                    "predictionId": self.prediction_id,
                    "limit": str(self._budget.limit),
                    "setting": "GATEWAY_OUTPUT_BYTES_BUDGET",
                },
                retry_after_seconds=1.0,
            )
        self.size += size
        self.held += size

    def _check(self, size: int, advice: str) -> None:
        limit = self._limits.max_reply_bytes
        if self.size + size > limit:
            raise FailedPrecondition(
                f"the output of prediction {self.prediction_id} comes to more than the reply "
                f"limit of {limit} bytes (GATEWAY_MAX_RESPONSE_BYTES), {advice}",
                reason="OUTPUT_REPLY_TOO_LARGE",
                metadata={
                    "predictionId": self.prediction_id,
                    "limit": str(limit),
                    "setting": "GATEWAY_MAX_RESPONSE_BYTES",
                },
            )


# --- fetching ----------------------------------------------------------------------------------


class OutputFetcher:
    """Turns a finished prediction's output into images, with their bytes when asked."""

    def __init__(
        self,
        client: ReplicateClient,
        policy: FilePolicy,
        limits: OutputLimits,
    ) -> None:
        self._client = client
        self._policy = policy
        self._limits = limits
        # One fetcher per process, so its budget is the process-wide one.
        self.budget = OutputBudget(limits.budget_bytes)

    async def images(
        self, prediction: Prediction, include_data: bool, token: str, deadline: Deadline
    ) -> tuple[ImageOutput, ...]:
        output = prediction.output
        uris = [output] if isinstance(output, str) else output
        if not isinstance(uris, list) or not all(_is_file_uri(uri) for uri in uris):
            # An id alone does not say what a model makes; its output does, too late.
            model = prediction.model or prediction.version
            raise InvalidArgument(
                f"model {model} made no image files (prediction {prediction.id}); call "
                "GenerateText for a text model, or name an image model",
                reason="WRONG_TASK",
                metadata={"predictionId": prediction.id, "model": model},
                violations=(FieldViolation("model", "its output is not files"),),
            )
        with self._reply(prediction.id) as reply:
            reply.count_urls(uris)
            if not include_data:
                return tuple(ImageOutput(uri=uri, mime_type=_type_of(uri)) for uri in uris)
            # Every URL is vetted before any is fetched: a refusal wastes no download.
            targets = [self._target(uri, index, prediction.id) for index, uri in enumerate(uris)]
            fetches = [
                asyncio.ensure_future(self._image(uri, target, reply, token, deadline, index))
                for index, (uri, target) in enumerate(zip(uris, targets, strict=True))
            ]
            try:
                return tuple(await asyncio.gather(*fetches))
            except BaseException:
                # One failed (or the caller left): the other downloads are of no use now.
                for fetch in fetches:
                    fetch.cancel()
                await asyncio.gather(*fetches, return_exceptions=True)
                raise

    @contextmanager
    def holding(self, size: int, prediction_id: str) -> Iterator[None]:
        """Bytes downloaded earlier (an operation's kept images), held against the reply
        limit and the process-wide budget while a reply is built from them."""
        with self._reply(prediction_id) as reply:
            reply.charge(size)
            yield

    @contextmanager
    def _reply(self, prediction_id: str) -> Iterator[_Reply]:
        reply = _Reply(self._limits, self.budget, prediction_id)
        try:
            yield reply
        finally:
            self.budget.give_back(reply.held)

    def _target(self, uri: str, index: int, prediction_id: str) -> Target | None:
        """Where to fetch output `index` from; None for a data: URI (nothing to fetch)."""
        if is_data_uri(uri):
            return None
        vetted = self._policy.vet(uri)
        if isinstance(vetted, Refusal):
            raise FailedPrecondition(
                f"output image {index} of prediction {prediction_id} is on {vetted.where}, "
                f"{vetted.why}, so the gateway will not fetch it; call again without "
                "include_data to get its URL only",
                reason="OUTPUT_HOST_NOT_ALLOWED",
                metadata={"predictionId": prediction_id, "image": str(index), "host": vetted.where},
            )
        return vetted

    async def _image(
        self,
        uri: str,
        target: Target | None,
        reply: _Reply,
        token: str,
        deadline: Deadline,
        index: int,
    ) -> ImageOutput:
        if target is None:
            mime, data = _decode_data_uri(uri)
            reply.charge(len(data))
            return ImageOutput(uri=uri, mime_type=mime, data=data)
        file_size = 0

        def charge(size: int) -> None:
            nonlocal file_size
            file_size += size
            limit = self._limits.max_file_bytes
            if file_size > limit:
                # Our limit, not a fault of Replicate's: the file itself is fine.
                raise FailedPrecondition(
                    f"output image {index} is larger than the gateway's download limit of "
                    f"{limit} bytes (GATEWAY_MAX_OUTPUT_FILE_BYTES); call again without "
                    "include_data to get its URL only",
                    reason="OUTPUT_FILE_TOO_LARGE",
                    metadata={
                        "predictionId": reply.prediction_id,
                        "image": str(index),
                        "limit": str(limit),
                        "setting": "GATEWAY_MAX_OUTPUT_FILE_BYTES",
                    },
                )
            reply.charge(size)

        for hop in range(MAX_REDIRECTS + 1):
            fetched = await self._client.download(
                target.url,
                token=token if target.send_token else None,
                deadline=deadline,
                charge=charge,
            )
            if fetched.redirect is None:
                # A generic type from the file host says less than the file's own extension.
                served = _media_type(fetched.content_type)
                mime = served if served != _UNKNOWN_TYPE else _type_of(uri)
                return ImageOutput(uri=uri, mime_type=mime, data=fetched.data)
            target = self._redirected(target, fetched.redirect, index, hop, reply.prediction_id)
        raise FailedPrecondition(
            f"output image {index} of prediction {reply.prediction_id} redirected more than "
            f"{MAX_REDIRECTS} times; call again without include_data to get its URL only",
            reason="OUTPUT_TOO_MANY_REDIRECTS",
            metadata={
                "predictionId": reply.prediction_id,
                "image": str(index),
                "limit": str(MAX_REDIRECTS),
            },
        )

    def _redirected(
        self, came_from: Target, location: str, index: int, hop: int, prediction_id: str
    ) -> Target:
        """The next hop, vetted by the same rule as the first URL."""
        try:
            url = urljoin(came_from.url, location)
        except ValueError:
            url = location
        vetted = (
            self._policy.vet(url)
            if location
            else Refusal("nowhere", "a redirect without a Location header")
        )
        if isinstance(vetted, Refusal):
            raise FailedPrecondition(
                f"output image {index} of prediction {prediction_id} redirected from "
                f"{came_from.origin} to {vetted.where}, "
                f"{vetted.why}, so the gateway will not follow; call again without "
                "include_data to get its URL only",
                reason="OUTPUT_REDIRECT_NOT_ALLOWED",
                metadata={
                    "predictionId": prediction_id,
                    "image": str(index),
                    "host": vetted.where,
                    "from": str(came_from.origin),
                    "hop": str(hop + 1),
                },
            )
        return vetted


def _is_file_uri(value: object) -> bool:
    return isinstance(value, str) and value[:8].lower().startswith(("https://", "http://", "data:"))


def _type_of(uri: str) -> str:
    """What a URI says of its type: a data: URI's header, else its file extension."""
    if is_data_uri(uri):
        return _media_type(uri[len("data:") :].partition(",")[0].split(";")[0])
    try:
        path = urlsplit(uri).path
    except ValueError:
        return _UNKNOWN_TYPE
    return mimetypes.guess_type(path)[0] or _UNKNOWN_TYPE


def _media_type(text: str) -> str:
    """A well-formed type/subtype as given, else the unknown type."""
    text = text.strip()
    return text if _MEDIA_TYPE.fullmatch(text) else _UNKNOWN_TYPE


def _decode_data_uri(uri: str) -> tuple[str, bytes]:
    """RFC 2397: `data:[<type>][;<parameter>...][;base64],<data>`."""
    header, comma, payload = uri[len("data:") :].partition(",")
    if not comma:
        raise bad_response(endpoint="get", detail="an output data: URI has no comma")
    params = header.split(";")
    mime = _media_type(params[0])
    if params[-1].strip().lower() != "base64":
        return mime, unquote_to_bytes(payload)
    try:
        return mime, base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise bad_response(endpoint="get", detail="an output data: URI is not base64") from exc
