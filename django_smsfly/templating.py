"""Message templates: :class:`~django_smsfly.models.MessageTemplate` texts rendered for one
recipient.

The texts (SMS, Viber, button caption) are in Django's template language, run by an
engine of their own that can do little on purpose:

- No loaders and no ``{% load %}``: a template cannot reach files, other templates or
  tag libraries. ``{% include %}``, ``{% extends %}``, ``{% block %}``, ``{% url %}``,
  ``{% csrf_token %}`` and ``{% debug %}`` are refused by name; the tags available are
  :data:`TAGS`, the filters :data:`FILTERS` (none that can blow a text up, such as
  ``center:"100000000"``).
- Autoescape off: an SMS is plain text, ``&`` must stay ``&``.
- The context holds plain values only (:data:`PLAIN_TYPES`): no object, so a template
  cannot walk attributes or call methods; ``{{ order.id }}`` is refused when saved.
- **A missing or empty value is an error that names it**, never a silent blank
  (``"Hi "``). ``{{ name|default:"friend" }}``, ``{% if name %}`` and ``{% firstof %}``
  test a value and so allow a blank explicitly. Missing and empty values are stood in
  for by a falsy marker that records any other use (printing it, filtering it); a
  render that used one fails, naming every such value.

The public functions: :func:`render` (and :func:`render_text` for one text),
:func:`find` (the variant for a language), :func:`variables` (the names a template
needs, so a CSV run can check its columns up front) and :func:`check_syntax` (for
model and admin forms). Render problems raise
:class:`TemplateError`, a :class:`~django_smsfly.exceptions.SmsFlyValidationError`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, NoReturn

from django.core.exceptions import ValidationError
from django.template import (
    Context,
    Engine,
    Library,
    Node,
    NodeList,
    Template,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, Lexer, TokenType, Variable
from django.template.exceptions import TemplateSyntaxError
from django.template.smartif import TokenBase
from django.utils import translation
from django.utils.translation import gettext, ngettext

from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import MessageTemplate
from django_smsfly.validation import (
    SmsContent,
    ViberContent,
    check_storable,
    validate_channels,
)

__all__ = [
    "FILTERS",
    "FORBIDDEN_TAGS",
    "PLAIN_TYPES",
    "TAGS",
    "Rendered",
    "TemplateError",
    "TemplateNotFound",
    "check_syntax",
    "find",
    "render",
    "render_text",
    "variables",
]

#: Tags a message template may use (with their inner and closing tags).
TAGS = ("if", "firstof", "with", "now", "comment", "verbatim", "templatetag", "spaceless")
_INNER_TAGS = frozenset(
    {"elif", "else", "endif", "endwith", "endcomment", "endverbatim", "endspaceless"}
)
#: Tags refused by name: they reach beyond the text (other templates, URLs, the
#: request, the server's state).
FORBIDDEN_TAGS = frozenset(
    {"load", "include", "extends", "block", "endblock", "debug", "url", "csrf_token"}
)
#: Filters a message template may use: text and number formatting on plain values.
FILTERS = (
    "add",
    "capfirst",
    "cut",
    "date",
    "default",
    "default_if_none",
    "divisibleby",
    "first",
    "floatformat",
    "last",
    "length",
    "lower",
    "pluralize",
    "slice",
    "time",
    "timesince",
    "timeuntil",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
    "wordcount",
    "yesno",
)
#: The value types a context may hold (a subclass of ``str``, ``int`` or ``float``,
#: such as a choices enum, is passed on as the plain value).
PLAIN_TYPES: tuple[type, ...] = (str, int, float, Decimal, dt.date, dt.datetime, bool, type(None))

_LIBRARY = Library()
_LIBRARY.tags.update({name: defaulttags.register.tags[name] for name in TAGS})
_LIBRARY.filters.update({name: defaultfilters.register.filters[name] for name in FILTERS})

#: The template's fields rendered for each channel.
_TEXT_FIELDS = {Channel.SMS: ("sms_text",), Channel.VIBER: ("viber_text", "button_caption")}


class _MessageEngine(Engine):
    """Django's engine with only :data:`TAGS` and :data:`FILTERS` built in."""

    default_builtins: ClassVar[list[str]] = []

    def get_template_builtins(self, builtins: list[str]) -> list[Library]:
        return [_LIBRARY]


_ENGINE = _MessageEngine(loaders=[], autoescape=False, debug=False)


class TemplateError(SmsFlyValidationError):
    """A message template could not be rendered: its syntax, a context value, or a
    placeholder whose value is missing or empty (:attr:`missing` names them)."""

    default_code = "TEMPLATE"

    def __init__(
        self, message: str, *, field: str | None = None, missing: Iterable[str] = ()
    ) -> None:
        super().__init__(message, field=field)
        #: The placeholders whose values were missing or empty, in the order used.
        self.missing: tuple[str, ...] = tuple(missing)


class TemplateNotFound(TemplateError, LookupError):
    """No :class:`~django_smsfly.models.MessageTemplate` has the name (for the language,
    or as the default variant)."""

    default_code = "TEMPLATE_NOT_FOUND"


@dataclass(frozen=True)
class Rendered:
    """A template's texts for one recipient, as
    :func:`~django_smsfly.services.send_message` takes them."""

    channels: tuple[Channel, ...]
    sms: SmsContent | None
    viber: ViberContent | None


# -- compiling -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    template: Template
    #: Context names the text reads, in the order they first appear.
    names: tuple[str, ...]


def _refuse(message: str) -> NoReturn:
    raise TemplateError(message)


def _check_tags(text: str) -> None:
    """Refuse forbidden and unknown tags by name, before Django's parser sees them (its
    own message for an unknown tag suggests ``{% load %}``), and an unclosed ``{{`` or
    ``{%``, which Django would send as it stands."""
    allowed = frozenset(TAGS) | _INNER_TAGS
    verbatim = False
    for token in Lexer(text).tokenize():
        if token.token_type is TokenType.TEXT:
            if not verbatim:
                _check_unclosed(token.contents, token.lineno or 1)
            continue
        if token.token_type is not TokenType.BLOCK:
            continue
        tag = token.contents.split(maxsplit=1)[0] if token.contents else ""
        verbatim = tag == "verbatim" or (verbatim and tag != "endverbatim")
        if tag in FORBIDDEN_TAGS:
            _refuse(
                gettext("line %(line)d: {%% %(tag)s %%} is not allowed in a message template")
                % {"line": token.lineno, "tag": tag}
            )
        if tag not in allowed:
            _refuse(
                gettext(
                    "line %(line)d: {%% %(tag)s %%} is not available in a message template "
                    "(available: %(tags)s)"
                )
                % {"line": token.lineno, "tag": tag, "tags": ", ".join(TAGS)}
            )


def _check_unclosed(text: str, first_line: int) -> None:
    found = [text.find(mark) for mark in ("{{", "{%", "{#")]
    starts = [index for index in found if index >= 0]
    if starts:
        line = first_line + text.count("\n", 0, min(starts))
        _refuse(gettext("line %(line)d: a {{, {%% or {# is not closed") % {"line": line})


@functools.lru_cache(maxsize=256)
def _compile(text: str) -> _Compiled:
    """Parse a text once (a campaign renders the same text for every row)."""
    try:
        check_storable(text, "template")
    except SmsFlyValidationError as exc:
        _refuse(exc.reason)
    _check_tags(text)
    try:
        template = _ENGINE.from_string(text)
    except TemplateSyntaxError as exc:
        _refuse(str(exc))
    names: list[str] = []
    bound: set[str] = set()
    for variable in _variables_of(template.nodelist, bound):
        lookups = variable.lookups
        if lookups is None:  # a literal: "text", 3, True
            continue
        if len(lookups) > 1:
            _refuse(
                gettext(
                    "{{ %(name)s }}: a message template sees plain values only; use a filter "
                    '(such as |upper or |date:"Y") instead of .%(attribute)s'
                )
                % {"name": variable.var, "attribute": ".".join(lookups[1:])}
            )
        if lookups[0] not in names:
            names.append(lookups[0])
    # Names a template binds itself ({% with x=... %}, {% now "Y" as year %}) are not
    # the context's to supply.
    return _Compiled(template, tuple(name for name in names if name not in bound))


def _variables_of(root: object, bound: set[str]) -> list[Variable]:
    """Every :class:`Variable` in a parsed template (tags, conditions, filter arguments);
    collects into ``bound`` the names the template binds itself."""
    found: list[Variable] = []
    pending: list[object] = [root]
    while pending:
        item = pending.pop(0)
        if isinstance(item, Variable):
            found.append(item)
        elif isinstance(item, FilterExpression):
            pending.append(item.var)
            pending.extend(arg for _func, args in item.filters for lookup, arg in args if lookup)
        elif isinstance(item, NodeList | list | tuple):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, Node | TokenBase):
            attributes = dict(vars(item))
            attributes.pop("token", None)
            attributes.pop("origin", None)
            extra = attributes.get("extra_context")
            if isinstance(extra, dict):
                bound.update(extra)
            asvar = attributes.get("asvar")
            if isinstance(asvar, str):
                bound.add(asvar)
            pending.extend(attributes.values())
    return found


def check_syntax(text: str) -> None:
    """Raise :class:`~django.core.exceptions.ValidationError` if ``text`` is not a valid
    message template (syntax, a forbidden tag or filter, an attribute lookup)."""
    try:
        _compile(text)
    except TemplateError as exc:
        raise ValidationError(exc.reason, code="template") from None


def variables(template: MessageTemplate | str) -> set[str]:
    """The context names a template (the texts of its channels) or one text reads.

    Raises :class:`TemplateError` for a text that does not compile.
    """
    return set(_names(template))


def _text_fields(template: MessageTemplate) -> list[str]:
    """The fields of ``template`` its channels send."""
    channels = validate_channels(template.channels.split(","))
    return [name for channel in channels for name in _TEXT_FIELDS[channel]]


def _names(template: MessageTemplate | str) -> list[str]:
    texts = (
        [template]
        if isinstance(template, str)
        else [getattr(template, name) for name in _text_fields(template)]
    )
    names: list[str] = []
    for text in texts:
        for name in _compile(text).names if text else ():
            if name not in names:
                names.append(name)
    return names


# -- rendering ---------------------------------------------------------------------------


@dataclass
class _Uses:
    """The missing or empty values a render used as more than a test."""

    names: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)


#: What a marker prints as: NUL cannot come from a template or a value (both are
#: refused), so the output shows whether one was printed even if a filter cut it.
_SENTINEL = "\x00"


class _Missing:
    """Stands for a missing or empty value: false for ``if``, ``default`` and
    ``firstof``; any other use (printing, filtering) is recorded as an error."""

    __slots__ = ("_name", "_uses")

    def __init__(self, name: str, uses: _Uses) -> None:
        self._name = name
        self._uses = uses

    def _used(self) -> None:
        self._uses.add(self._name)

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        self._used()
        return _SENTINEL

    def __format__(self, spec: str) -> str:
        self._used()
        return _SENTINEL

    def __len__(self) -> int:
        self._used()
        return 0

    def __getattr__(self, name: str) -> Any:
        self._used()
        raise AttributeError(name)

    def __int__(self) -> int:
        self._used()
        raise TypeError(self._name)

    def __float__(self) -> float:
        self._used()
        raise TypeError(self._name)

    def __iter__(self) -> Any:
        self._used()
        return iter(())

    def __getitem__(self, key: object) -> Any:
        self._used()
        raise TypeError(self._name)


def _plain(name: object, value: object) -> object:
    """``value`` as one of :data:`PLAIN_TYPES`, or a :class:`TemplateError`."""
    if not isinstance(name, str):
        _refuse(gettext("context names must be strings, not %(type)s") % {"type": type(name)})
    if value is None or type(value) in PLAIN_TYPES:
        if isinstance(value, str):
            try:
                check_storable(value, name)
            except SmsFlyValidationError as exc:
                raise TemplateError(exc.reason, field=name) from None
        return value
    # A subclass (a choices enum, a SafeString) may carry methods a template could
    # call: pass on the plain value only.
    if isinstance(value, str):
        return _plain(name, str.__str__(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    raise TemplateError(
        gettext(
            "%(type)s is not a plain value; a template context holds text, numbers, "
            "dates, true/false or None"
        )
        % {"type": type(value).__name__},
        field=name,
    )


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _render_text(text: str, values: Mapping[str, object], uses: _Uses) -> str:
    compiled = _compile(text)
    context = {
        name: (
            _Missing(name, uses) if name not in values or _is_empty(values[name]) else values[name]
        )
        for name in compiled.names
    }
    try:
        output = compiled.template.render(Context(context, autoescape=False))
    except TemplateError:
        raise
    # A filter given a value it cannot take (|add:"x" on a date, say) is the template
    # author's mistake, to report as such rather than as a crash.
    except Exception as exc:
        raise TemplateError(
            gettext("the template could not be rendered: %(error)s") % {"error": exc}
        ) from None
    if _SENTINEL in output and not uses.names:  # pragma: no cover - belt and braces
        uses.add("?")
    return output.replace("\r\n", "\n").strip()


def render_text(text: str, context: Mapping[str, object]) -> str:
    """One template text rendered with ``context`` (a preview of one field, say), with
    the checks of :func:`render`: plain values, no missing or empty placeholder."""
    values = {name: _plain(name, value) for name, value in context.items()}
    uses = _Uses()
    output = _render_text(text, values, uses)
    if uses.names:
        raise TemplateError(_missing_message(uses.names), missing=uses.names)
    return output


def render(template: MessageTemplate, context: Mapping[str, object]) -> Rendered:
    """The template's texts for one recipient, rendered with ``context``.

    Raises :class:`TemplateError` before anything is sent: for a value that is not
    plain data, for a placeholder whose value is missing or empty (all of them named),
    or for a channel whose text renders empty.
    """
    values = {name: _plain(name, value) for name, value in context.items()}
    channels = validate_channels(template.channels.split(","))
    uses = _Uses()
    texts = {
        name: _render_text(getattr(template, name), values, uses)
        for name in _text_fields(template)
    }
    if uses.names:
        raise TemplateError(_missing_message(uses.names), missing=uses.names)
    sms = viber = None
    if Channel.SMS in channels:
        sms = SmsContent(text=_required(texts["sms_text"], "sms_text"))
    if Channel.VIBER in channels:
        has_text = bool(template.viber_text)
        viber = ViberContent(
            text=_required(texts["viber_text"], "viber_text") if has_text else None,
            image=template.image or None,
            button_caption=texts["button_caption"] or None,
            button_url=template.button_url or None,
        )
    return Rendered(channels=channels, sms=sms, viber=viber)


def _required(text: str, field_name: str) -> str:
    if not text:
        raise TemplateError(
            gettext("the text is empty once rendered; a channel needs a text"), field=field_name
        )
    return text


def _missing_message(names: list[str]) -> str:
    shown = ", ".join(f"{{{{ {name} }}}}" for name in names)
    return ngettext(
        'the template needs %(names)s, which is missing or empty (write {{ name|default:"…" }} '
        "where a blank is fine)",
        'the template needs %(names)s, which are missing or empty (write {{ name|default:"…" }} '
        "where a blank is fine)",
        len(names),
    ) % {"names": shown}


# -- finding -----------------------------------------------------------------------------


def _language_candidates(language: str | None) -> list[str]:
    """``"uk-ua"`` -> ``["uk-ua", "uk", ""]``: the variants to try, best first."""
    code = (language if language is not None else translation.get_language()) or ""
    code = code.strip().lower().replace("_", "-")
    candidates: list[str] = []
    while code:
        candidates.append(code)
        code = code.rpartition("-")[0]
    candidates.append("")
    return candidates


def find(name: str, language: str | None = None) -> MessageTemplate:
    """The template called ``name`` for ``language`` (default: the active language).

    Falls back from a regional code to its language (``uk-ua`` -> ``uk``) and then to
    the default variant (language empty). Raises :class:`TemplateNotFound` (a
    ``LookupError``) naming the template when none of them exists.
    """
    candidates = _language_candidates(language)
    found = {
        t.language: t for t in MessageTemplate.objects.filter(name=name, language__in=candidates)
    }
    for candidate in candidates:
        if candidate in found:
            return found[candidate]
    raise TemplateNotFound(
        gettext(
            "no message template %(name)r for the language %(language)r, nor a default "
            "variant (language left empty)"
        )
        % {"name": name, "language": candidates[0]},
        field="template",
    )
