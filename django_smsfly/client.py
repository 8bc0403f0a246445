"""The SMS-fly API client: one method per API action, typed results, mapped errors.

The client knows nothing of Django's ORM or settings: give it a key and a backend::

    from django_smsfly.backends.http import HTTPBackend
    from django_smsfly.client import SmsFlyClient

    client = SmsFlyClient("my-api-key", backend=HTTPBackend(api_url=API_URL_UA))
    client.get_balance()                      # Decimal("91.477")
    result = client.send_sms("050 123 4567", "Your code: 1234", source="InfoCenter")
    result.message_id                         # "FAPI00040A3AFA000002"

In a Django site use :func:`django_smsfly.get_client`, which builds one from
``settings.SMSFLY`` and shares it (and its connection pool) across the process.

Every input is validated before a request is made; every reply is turned into a
result or into exactly one :class:`~django_smsfly.exceptions.SmsFlyError` subclass here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from django_smsfly import __version__
from django_smsfly.backends.base import (
    TEXT_LIMIT,
    BaseBackend,
    RawReply,
    concealed,
    concealing,
    parse_retry_after,
    redact_and_cut,
    redact_text,
)
from django_smsfly.channels import Channel
from django_smsfly.exceptions import (
    SmsFlyAPIError,
    SmsFlyAuthError,
    SmsFlyBadReply,
    SmsFlyError,
    SmsFlyInsufficientFunds,
    SmsFlyInvalidRequest,
    SmsFlyMessageNotFound,
    SmsFlyRateLimited,
    SmsFlyServerError,
    SmsFlyValidationError,
    _,
)
from django_smsfly.results import (
    Balances,
    PriceList,
    SendResult,
    Sources,
    StatusResult,
    normalize_network_code,
    parse_datetime,
    parse_decimal,
)
from django_smsfly.validation import (
    MAX_SMS_PARTS,
    SmsContent,
    ViberContent,
    build_send_data,
    sms_fallback,
    validate_channels,
)

logger = logging.getLogger("django_smsfly.client")

_T = TypeVar("_T")

#: Identifies this library in ``auth.appversion`` and the ``User-Agent``.
APP_VERSION = f"django-smsfly/{__version__}"

_ALL_CHANNELS = (Channel.SMS, Channel.VIBER)
_FUNDS_CODES = frozenset({"INSUFFICIENTFUND", "INSUFFICIENTFUNDS"})

#: The longest ``Retry-After`` believed, in seconds. A larger one (a server's mistake,
#: such as ``99999999999999``) means "a long time", not a span no date can hold.
MAX_RETRY_AFTER = 24 * 3600.0
_AUTH_CODES = frozenset({"FORBIDDEN", "INVKEY", "INVAUTH", "AUTH"})
#: How much of a reply that is not the API's JSON becomes an error's ``description``.
DESCRIPTION_LIMIT = 200


@dataclass(frozen=True)
class PreparedMessage:
    """A validated SENDMESSAGE request, ready to send (see :meth:`SmsFlyClient.prepare`).

    Storing this before sending lets a caller record exactly what went out.
    """

    recipient: str
    channels: tuple[Channel, ...]
    #: The request's ``data`` object, exactly as it will be sent.
    data: Mapping[str, Any]


class SmsFlyClient:
    """A client for SMS-fly's JSON API v2.04.

    :param api_key: the key from SMS-fly's "API settings" page.
    :param backend: where requests go (:class:`~django_smsfly.backends.http.HTTPBackend`
        or :class:`~django_smsfly.backends.sandbox.SandboxBackend`).
    :param default_region: country for numbers written without a country code.
    :param sms_source: sender name used when a send does not name one (SMS).
    :param viber_source: sender name used when a send does not name one (Viber).
    :param appversion: sent as ``auth.appversion`` so SMS-fly can tell the client;
        ``None`` sends nothing.
    :param allowed_regions: countries (ISO 3166) a message may go to; ``None``: any.
    :param max_sms_parts: the most parts an SMS text may take.
    """

    @method_decorator(sensitive_variables("api_key"))
    def __init__(
        self,
        api_key: str,
        *,
        backend: BaseBackend,
        default_region: str = "UA",
        sms_source: str | None = None,
        viber_source: str | None = None,
        appversion: str | None = APP_VERSION,
        allowed_regions: Iterable[str] | None = None,
        max_sms_parts: int = MAX_SMS_PARTS,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("SmsFlyClient needs a non-empty api_key")
        self._api_key = api_key
        self.backend = backend
        self.default_region = default_region
        self.sms_source = sms_source
        self.viber_source = viber_source
        self.appversion = appversion
        self.allowed_regions = None if allowed_regions is None else tuple(allowed_regions)
        self.max_sms_parts = max_sms_parts

    def __repr__(self) -> str:
        return f"<SmsFlyClient backend={self.backend!r}>"

    # -- the one request path ---------------------------------------------------------

    def request(self, action: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one action and return the reply's ``data`` object, or raise.

        This is the single place where replies become data or exceptions; the typed
        methods below build ``data`` and read the result.
        """
        return self._exchange(action, data)[0]

    # Every frame from here down (backend, requests, urllib3) holds the key in a local:
    # Django's error pages and error e-mails show frame variables, and this hides all
    # of them in every frame under this call. Applied to the function itself, not
    # through method_decorator, which would build a new wrapper on every call.
    @sensitive_variables()
    def _exchange(
        self, action: str, data: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dt.datetime | None]:
        """Like :meth:`request`, also returning the reply's own date."""
        auth: dict[str, str] = {"key": self._api_key}
        if self.appversion:
            auth["appversion"] = self.appversion
        body = {"auth": auth, "action": action, "data": dict(data or {})}
        try:
            raw = self._scrubbed(self.backend.send(body))
            return self._read_reply(action, raw), _reply_date(raw.body)
        except SmsFlyError as exc:
            # Texts come from backends and servers; whatever they echo, the key (and a
            # sensitive message's secrets) never leaves in an exception.
            for secret in (self._api_key, *concealed()):
                _scrub_exception(exc, secret)
            raise

    def _scrubbed(self, raw: RawReply) -> RawReply:
        """``raw`` without the key in any string of its body or in its text.

        Every reply passes here before it is read, successful ones too: a server that
        echoes the key (in a message id, a status, a sender name) must not have it
        stored, shown or logged, and a field quoted or cut later must hold none of it.
        """
        body = raw.body
        for secret in (self._api_key, *concealed()):
            if _may_hold(body, secret):
                body = _scrub(body, secret)
        text = redact_and_cut(raw.text, self._api_key, TEXT_LIMIT)
        for secret in concealed():
            text = redact_text(text, secret)
        return dataclasses.replace(raw, body=body, text=text)

    def _parse(self, action: str, build: Callable[[], _T]) -> _T:
        """Build a typed result from a reply's data; one that does not fit raises
        :class:`~django_smsfly.exceptions.SmsFlyBadReply` naming the action, scrubbed
        of the key like every other error (a bad field's value is quoted in it)."""
        try:
            return build()
        except SmsFlyBadReply as exc:
            exc.action = exc.action or action
            exc.message = f"{action}: {exc.message}"
            exc.args = (exc.message,)
            _scrub_exception(exc, self._api_key)
            raise

    def _read_reply(self, action: str, raw: RawReply) -> dict[str, Any]:
        status = raw.http_status
        body = raw.body
        if not isinstance(body, Mapping):
            raise self._error_without_body(action, raw)
        success = body.get("success")
        if success in (1, "1", True) and status < 400:
            data = body.get("data")
            if not isinstance(data, Mapping):
                raise SmsFlyBadReply(
                    _("%(action)s: the reply has no data object") % {"action": action},
                    http_status=status,
                    action=action,
                )
            return dict(data)
        if success in (0, "0", False) or status >= 400:
            raise self._api_error(action, raw, body)
        raise SmsFlyBadReply(
            _("%(action)s: the reply has no 'success' flag") % {"action": action},
            http_status=status,
            action=action,
        )

    def _error_without_body(self, action: str, raw: RawReply) -> SmsFlyError:
        status = raw.http_status
        text = raw.text.strip()  # already scrubbed, then cut, by _scrubbed()
        kwargs: dict[str, Any] = {
            "http_status": status,
            "action": action,
            "description": redact_and_cut(text, self._api_key, DESCRIPTION_LIMIT),
        }
        values = {"action": action, "status": status}
        if status == 429:
            return SmsFlyRateLimited(
                _("%(action)s: rate limited by SMS-fly (HTTP 429)") % values,
                retry_after=_retry_after(raw),
                **kwargs,
            )
        if status == 403:
            return SmsFlyAuthError(_("%(action)s: access denied (HTTP 403)") % values, **kwargs)
        if status >= 500:
            return SmsFlyServerError(
                _("%(action)s: SMS-fly server error (HTTP %(status)s)") % values, **kwargs
            )
        if status >= 400:
            return SmsFlyInvalidRequest(
                _("%(action)s: request refused (HTTP %(status)s)") % values, **kwargs
            )
        if raw.body is not None:
            text_of_error = _("%(action)s: a JSON reply that is not an object (HTTP %(status)s)")
        elif not text:
            text_of_error = _("%(action)s: an empty reply (HTTP %(status)s)")
        else:
            text_of_error = _("%(action)s: a reply that is not JSON (HTTP %(status)s)")
        return SmsFlyBadReply(text_of_error % values, http_status=status, action=action, body=text)

    def _api_error(self, action: str, raw: RawReply, body: Mapping[str, Any]) -> SmsFlyAPIError:
        error = body.get("error")
        error = error if isinstance(error, Mapping) else {}
        code = error.get("code")
        code = code.strip().upper() if isinstance(code, str) and code.strip() else None
        description = error.get("description")
        description = description if isinstance(description, str) else ""
        status = raw.http_status
        kwargs: dict[str, Any] = {
            "code": code,
            "description": description,
            "http_status": status,
            "reply": body,
            "action": action,
        }
        label = f"{action}: {code or f'HTTP {status}'}" + (
            f": {description}" if description else ""
        )
        cls: type[SmsFlyAPIError]
        if status == 429:
            return SmsFlyRateLimited(label, retry_after=_retry_after(raw), **kwargs)
        if status == 403 or code in _AUTH_CODES:
            cls = SmsFlyAuthError
        elif code in _FUNDS_CODES:
            cls = SmsFlyInsufficientFunds
        elif code == "INVMSGID":
            cls = SmsFlyMessageNotFound
        elif (code or "").startswith("INV") or status in (400, 422):
            cls = SmsFlyInvalidRequest
        elif status >= 500:
            cls = SmsFlyServerError
        else:
            cls = SmsFlyAPIError
        return cls(label, **kwargs)

    # -- balance ----------------------------------------------------------------------

    def get_balance(self) -> Decimal:
        """The account balance (GETBALANCE)."""
        data = self.request("GETBALANCE")
        return self._parse("GETBALANCE", lambda: parse_decimal(data.get("balance"), "balance"))

    def get_balance_ext(self) -> Balances:
        """The SMS and Viber balances (GETBALANCEEXT)."""
        data = self.request("GETBALANCEEXT")
        return self._parse("GETBALANCEEXT", lambda: Balances.from_data(data))

    # -- sender names and prices ------------------------------------------------------

    def get_sources(self, channels: Iterable[Channel | str] = _ALL_CHANNELS) -> Sources:
        """Sender names the account may use (GETSOURCES)."""
        data = self.request("GETSOURCES", {"channels": _wire(channels)})
        return self._parse("GETSOURCES", lambda: Sources.from_data(data))

    def get_price_list(
        self, mcc: str | int = "255", channels: Iterable[Channel | str] = _ALL_CHANNELS
    ) -> PriceList:
        """Prices for every network of one country (GETPRICELIST). 255 is Ukraine."""
        data = self.request(
            "GETPRICELIST", {"channels": _wire(channels), "mcc": _code(mcc, "mcc")}
        )
        return self._parse("GETPRICELIST", lambda: PriceList.from_data(data, "pricelist"))

    def get_price(
        self,
        mcc: str | int,
        mnc: str | int,
        channels: Iterable[Channel | str] = _ALL_CHANNELS,
    ) -> PriceList:
        """Prices for one network (GETPRICE)."""
        request = {"channels": _wire(channels), "mcc": _code(mcc, "mcc"), "mnc": _code(mnc, "mnc")}
        data = self.request("GETPRICE", request)
        return self._parse("GETPRICE", lambda: PriceList.from_data(data, "price"))

    # -- sending ----------------------------------------------------------------------

    def prepare(
        self,
        recipient: object,
        *,
        channels: Iterable[Channel | str] | str,
        sms: SmsContent | Mapping[str, Any] | None = None,
        viber: ViberContent | Mapping[str, Any] | None = None,
    ) -> PreparedMessage:
        """Validate a message and build its request without sending anything.

        Raises :class:`~django_smsfly.exceptions.SmsFlyValidationError` naming the field.
        """
        data = build_send_data(
            recipient,
            channels=channels,
            sms=sms,  # type: ignore[arg-type]  # mappings are coerced by build_send_data
            viber=viber,  # type: ignore[arg-type]
            region=self.default_region,
            sms_source=self.sms_source,
            viber_source=self.viber_source,
            allowed_regions=self.allowed_regions,
            max_sms_parts=self.max_sms_parts,
        )
        return PreparedMessage(
            recipient=data["recipient"],
            channels=tuple(Channel(c) for c in data["channels"]),
            data=data,
        )

    def send_prepared(self, message: PreparedMessage, *, sensitive: bool = False) -> SendResult:
        """Send a message built by :meth:`prepare` (SENDMESSAGE).

        ``sensitive``: the texts hold a secret (a one-time code). Its words with digits
        are concealed in every log line, reply and error while the request is made
        (:func:`~django_smsfly.backends.base.concealing`): only the request carries them.
        """
        if sensitive:
            texts = [
                block["text"]
                for block in (message.data.get("sms"), message.data.get("viber"))
                if isinstance(block, Mapping) and isinstance(block.get("text"), str)
            ]
            with concealing(texts):
                data, date = self._exchange("SENDMESSAGE", message.data)
        else:
            data, date = self._exchange("SENDMESSAGE", message.data)
        return self._parse("SENDMESSAGE", lambda: SendResult.from_data(data, date))

    def send_message(
        self,
        recipient: object,
        *,
        channels: Iterable[Channel | str] | str,
        sms: SmsContent | Mapping[str, Any] | None = None,
        viber: ViberContent | Mapping[str, Any] | None = None,
    ) -> SendResult:
        """Send a message over one or more channels, in fallback order (SENDMESSAGE)."""
        return self.send_prepared(self.prepare(recipient, channels=channels, sms=sms, viber=viber))

    def send_sms(
        self,
        recipient: object,
        text: str,
        *,
        source: str | None = None,
        ttl: int | None = None,
        flash: bool = False,
    ) -> SendResult:
        """Send an SMS."""
        content = SmsContent(text=text, source=source, ttl=ttl, flash=flash)
        return self.send_message(recipient, channels=[Channel.SMS], sms=content)

    def send_viber(
        self,
        recipient: object,
        *,
        text: str | None = None,
        image: str | None = None,
        button_caption: str | None = None,
        button_url: str | None = None,
        source: str | None = None,
        ttl: int | None = None,
        sms_text: str | None = None,
        sms_source: str | None = None,
        sms_ttl: int | None = None,
    ) -> SendResult:
        """Send a Viber message; with ``sms_text`` an SMS follows if Viber fails."""
        viber = ViberContent(
            text=text,
            image=image,
            button_caption=button_caption,
            button_url=button_url,
            source=source,
            ttl=ttl,
        )
        sms = sms_fallback(sms_text, sms_source, sms_ttl)
        channels = [Channel.VIBER, Channel.SMS] if sms else [Channel.VIBER]
        return self.send_message(recipient, channels=channels, viber=viber, sms=sms)

    # -- statuses ---------------------------------------------------------------------

    def get_message_status(self, message_id: str) -> StatusResult:
        """The current per-channel status of one message (GETMESSAGESTATUS)."""
        if not isinstance(message_id, str) or not message_id.strip():
            raise SmsFlyValidationError(_("a message id is required"), field="message_id")
        data, date = self._exchange("GETMESSAGESTATUS", {"messageID": message_id.strip()})
        return self._parse("GETMESSAGESTATUS", lambda: StatusResult.from_data(data, date))

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()


def _wire(channels: Iterable[Channel | str]) -> list[str]:
    return [c.value for c in validate_channels(channels)]


def _code(value: str | int, field: str) -> str:
    """A country (mcc) or network (mnc) code as SMS-fly writes it: ``255``, ``01``.

    Replies key networks with two digits at least (``"01"``), so ``1`` is sent as ``"01"``
    and the price it returns is found under the same code.
    """
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or len(text) > 3:
        raise SmsFlyValidationError(
            _("must be 1 to 3 digits, not %(value)r") % {"value": value}, field=field
        )
    return normalize_network_code(text, 3 if field == "mcc" else 2)


def _retry_after(raw: RawReply) -> float | None:
    seconds = parse_retry_after(raw.headers.get("retry-after"))
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def _reply_date(body: object) -> dt.datetime | None:
    # The envelope's date is informative only (channel dates carry the facts), so a
    # malformed one is dropped rather than failing a reply that otherwise succeeded.
    value = body.get("date") if isinstance(body, Mapping) else None
    if isinstance(value, str):
        try:
            return parse_datetime(value, "date")
        except SmsFlyBadReply:
            return None
    return None


def _may_hold(value: object, secret: str) -> bool:
    """False when no string in ``value`` holds ``secret``, found with one search of its
    JSON text: a reply is almost never an echo, and this is many times quicker than the
    walk that rebuilds it. (JSON escapes a string character by character, so a string
    holding the key holds it JSON-escaped in the text, a form :func:`redact_text` knows.)
    """
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):  # odd keys, a cycle, nested too deep
        return True
    return redact_text(text, secret) != text


def _is_container(value: object) -> bool:
    return isinstance(value, Mapping | list | tuple) and not isinstance(value, enum.Enum)


def _scrub_leaf(value: Any, secret: str) -> Any:
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        # A Verdict is a str too, and must stay what it is.
        return redact_text(value, secret)
    return value


def _scrub(value: Any, secret: str) -> Any:
    """A copy of ``value`` with ``secret`` replaced in every string, keys included.

    Walks with its own stack instead of recursing: a server's reply can nest deeper
    than Python's recursion limit, and the error path that scrubs it must not crash.
    """
    if not _is_container(value):
        return _scrub_leaf(value, secret)
    # Each frame: a container, its scrubbed items so far, and the items still to do
    # (a mapping's keys and values alternate).
    stack: list[tuple[Any, list[Any], Iterator[Any]]] = [(value, [], _items(value))]
    while True:
        container, done, todo = stack[-1]
        item = next(todo, _END)
        if item is _END:
            stack.pop()
            built = _rebuilt(container, done)
            if not stack:
                return built
            stack[-1][1].append(built)
        elif _is_container(item):
            stack.append((item, [], _items(item)))
        else:
            done.append(_scrub_leaf(item, secret))


_END = object()


def _items(container: Any) -> Iterator[Any]:
    if isinstance(container, Mapping):
        return itertools.chain.from_iterable(container.items())
    return iter(container)


def _rebuilt(container: Any, items: list[Any]) -> Any:
    if isinstance(container, Mapping):
        return dict(zip(items[::2], items[1::2], strict=True))
    return type(container)(items)


def _scrub_exception(exc: SmsFlyError, secret: str) -> None:
    """Remove ``secret`` from every text an exception carries."""
    for name, value in list(vars(exc).items()):
        if isinstance(value, str | Mapping | list | tuple):
            setattr(exc, name, _scrub(value, secret))
    exc.args = tuple(_scrub(a, secret) for a in exc.args)
