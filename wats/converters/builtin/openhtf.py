"""OpenHTF JSON test records (``OutputToJSON``) as WATS UUT reports.

An OpenHTF record is one run of a test on one DUT: its ``dut_id``, ``station_id``, an overall
``outcome``, the ``metadata`` the test was declared with, and the ``phases`` that ran, each with
its measurements (values, validators, units) and attachments. Every phase becomes a sequence
call and every measurement a step under it; outcomes are carried over as stated, never
recomputed from the limits. Mapping tables and arguments: docs/converters/openhtf.md.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, tzinfo
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError

from wats.api.models import (
    BinaryData,
    MiscInfo,
    ReportResult,
    SequenceCallInfo,
    SequenceCallStep,
    StepStatus,
    UUTInfo,
    UUTReport,
    walk_steps,
)
from wats.api.models.codec import describe_validation_error
from wats.converters.base import (
    SNIFF_BYTES,
    ConverterBase,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    read_source,
)
from wats.converters.builtin._openhtf_steps import (
    PhaseContext,
    RecordError,
    build_phase_steps,
    expect_dict,
    expect_list,
    given,
    millis_to_datetime,
    seconds_between,
    short,
)
from wats.converters.defaults import (
    DefaultIdentifier,
    DefaultText,
    HeaderDefaults,
    HeaderField,
    HeaderFieldError,
    part_number_argument,
    process_code_argument,
    revision_argument,
    serial_number_argument,
)

__all__ = ["OpenHTFArguments", "OpenHTFConverter"]

RESULT_BY_OUTCOME = {
    "PASS": ReportResult.PASSED,
    "FAIL": ReportResult.FAILED,
    "ERROR": ReportResult.ERROR,
    "TIMEOUT": ReportResult.TERMINATED,
    "ABORTED": ReportResult.TERMINATED,
    "MARGINAL_PASS": ReportResult.PASSED,
}
"""OpenHTF test Outcome → WATS report result (WATS has no timeout or marginal result)."""

_ROOT_STATUS = {
    ReportResult.PASSED: StepStatus.PASSED,
    ReportResult.FAILED: StepStatus.FAILED,
    ReportResult.ERROR: StepStatus.ERROR,
    ReportResult.TERMINATED: StepStatus.TERMINATED,
}

# Top-level keys every OpenHTF record has; validate() counts how many a file carries.
_SIGNATURE = frozenset(
    {
        "dut_id",
        "start_time_millis",
        "end_time_millis",
        "outcome",
        "outcome_details",
        "phases",
        "station_id",
        "code_info",
        "log_records",
        "metadata",
    }
)
_SIGNATURE_KEY = re.compile(rb'"(' + b"|".join(k.encode() for k in _SIGNATURE) + rb')"\s*:')
_FULL_PARSE_LIMIT = 2 * 1024 * 1024  # validate() parses files up to this; larger ones by head

# Metadata keys (compared lower-case without "_", "-" or spaces) that fill header fields.
_PART_KEYS = ("partnumber", "partno", "pn", "part", "productnumber")
_REVISION_KEYS = ("revision", "rev", "partrevision", "hardwarerevision", "hwrevision")
_OPERATOR_KEYS = ("operator", "operatorid", "operatorname", "user", "username")
_FIXTURE_KEYS = ("fixtureid", "fixture")
_BATCH_KEYS = ("batchsn", "batch", "batchnumber", "lot", "lotnumber")
_SOCKET_KEYS = ("testsocketindex", "socketindex", "socket")
_PROCESS_NAME_KEYS = ("process", "processname", "operation", "testoperation")
_PROCESS_CODE_KEYS = ("processcode", "operationcode")
_COMMENT_KEYS = ("comment",)
_HEADER_KEYS = frozenset(
    _PART_KEYS
    + _REVISION_KEYS
    + _OPERATOR_KEYS
    + _FIXTURE_KEYS
    + _BATCH_KEYS
    + _SOCKET_KEYS
    + _PROCESS_NAME_KEYS
    + _PROCESS_CODE_KEYS
    + _COMMENT_KEYS
)
_MAX_MISC_INFOS = 50
_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


class OpenHTFArguments(BaseModel):
    """Settings of the OpenHTF converter (config ``arguments = { ... }``)."""

    model_config = ConfigDict(extra="forbid")

    process_code: int = process_code_argument()
    """Process (test operation) code when the record's metadata names none the server knows."""
    default_part_number: DefaultIdentifier = part_number_argument(
        validation_alias=AliasChoices("default_part_number", "part_number")
    )
    """Part number when the metadata has none (OpenHTF records usually have none). The old
    name ``part_number`` is still accepted."""
    default_revision: DefaultText = revision_argument(
        "1", validation_alias=AliasChoices("default_revision", "revision")
    )
    """Revision when the metadata has none (old name ``revision`` still accepted)."""
    default_serial_number: DefaultIdentifier | None = serial_number_argument()
    """Serial number when ``dut_id`` is empty; unset, such a record fails."""
    time_zone: Literal["utc", "local"] = "utc"
    """Offset of the start times: ``utc`` (+00:00) or the station's local offset."""
    attach_log: bool = False
    """Attach the record's log lines to the report as ``openhtf-log.txt`` binary data."""


class OpenHTFConverter(ConverterBase):
    """OpenHTF JSON test records: phases become sequence calls, measurements steps."""

    name = "openhtf"
    version = "1.0"
    file_patterns = ("*.json",)
    kind = "file"
    Arguments = OpenHTFArguments

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """One UUT report per record; a record that cannot be read fails with where and why."""
        args = context.arguments
        if not isinstance(args, OpenHTFArguments):
            args = OpenHTFArguments()
        raw, problem = read_source(source)
        if problem is not None:
            return ConverterResult.fail(problem)
        try:
            record = json.loads(raw)
        except RecursionError:
            return ConverterResult.fail("not an OpenHTF record: JSON nested too deeply")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            return ConverterResult.fail(f"not valid JSON: {exc}")
        try:
            return _convert_record(record, args, context)
        except RecordError as exc:
            return ConverterResult.fail(f"not a readable OpenHTF record: {exc}")
        except HeaderFieldError as exc:
            return ConverterResult.fail(str(exc))
        except ValidationError as exc:
            return ConverterResult.fail(
                f"the record does not make a valid WATS report: {describe_validation_error(exc)}"
            )
        except RecursionError:
            return ConverterResult.fail("not an OpenHTF record: values nested too deeply")

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """0.95 for a JSON object with OpenHTF's top-level keys (``dut_id``, ``phases``, ...),
        0.6 when only some are there, 0.05 for other JSON (0.02 for WSJF reports), 0 for
        anything that is not JSON. Files over 2 MiB are judged by the keys in their head."""
        try:
            size = source.size
            head = source.read_head(_FULL_PARSE_LIMIT if size <= _FULL_PARSE_LIMIT else SNIFF_BYTES)
        except OSError:
            return 0.0
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not text.startswith((b"{", b"[")):
            return 0.0
        if size > _FULL_PARSE_LIMIT:
            found = {m.group(1) for m in _SIGNATURE_KEY.finditer(text)}
            return 0.9 if b"dut_id" in found and len(found) >= 3 else 0.05
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return 0.0
        if not isinstance(data, dict):
            return 0.02
        keys = _SIGNATURE & data.keys()
        if {"dut_id", "phases"} <= keys and len(keys) >= 4 and isinstance(data["phases"], list):
            return 0.95
        if len(keys) >= 3:
            return 0.6
        if data.get("type") in ("T", "R") and "pn" in data:
            return 0.02
        return 0.05


def _convert_record(
    data: Any, args: OpenHTFArguments, context: ConverterContext
) -> ConverterResult:
    record = expect_dict(data, "the file")
    missing = [key for key in ("dut_id", "outcome", "phases") if key not in record]
    if missing:
        raise RecordError(f"missing {', '.join(missing)} (is this an OpenHTF JSON test record?)")
    tz: tzinfo = UTC if args.time_zone == "utc" else (context.now().tzinfo or UTC)
    ctx = PhaseContext(tz=tz)
    metadata = record.get("metadata")
    metadata = expect_dict(metadata, "metadata") if metadata is not None else {}
    header = {_normal(key): text for key, value in metadata.items() if (text := _scalar(value))}

    defaults = HeaderDefaults(args, ctx.warn)
    serial = defaults.text(HeaderField.SERIAL_NUMBER, _scalar(record.get("dut_id")), "dut_id")
    outcome = record.get("outcome")
    result = RESULT_BY_OUTCOME.get(outcome) if isinstance(outcome, str) else None
    if result is None:
        raise RecordError(
            f"outcome: {outcome!r} is not an OpenHTF test outcome "
            f"({', '.join(RESULT_BY_OUTCOME)}); was the test still running?"
        )
    marginal = record.get("marginal") is True or outcome == "MARGINAL_PASS"
    if marginal:
        ctx.warn("the test passed marginally; WATS has no marginal result (kept passed)")

    start = millis_to_datetime(record.get("start_time_millis"), tz, "start_time_millis")
    if start is None:
        start = context.now()
        ctx.warn("the record has no start_time_millis; using the conversion time", 0.8)
    exec_time = seconds_between(record.get("start_time_millis"), record.get("end_time_millis"))

    part = defaults.text(HeaderField.PART_NUMBER, _first(header, _PART_KEYS), "metadata")
    revision = defaults.text(HeaderField.REVISION, _first(header, _REVISION_KEYS), "metadata")
    process_code = _process_code(header, context, defaults)
    ctx.confidence = min(ctx.confidence, defaults.confidence)
    station = _scalar(record.get("station_id")) or context.station.name
    test_name = _scalar(metadata.get("test_name"))
    test_version = _scalar(metadata.get("test_version"))

    steps = build_phase_steps(record, ctx)
    root = SequenceCallStep(
        name=short(test_name or "OpenHTF test"),
        status=_ROOT_STATUS[result],
        seq_call=SequenceCallInfo(**given(name=test_name or "OpenHTF test", version=test_version)),
        start=start,
        steps=steps,
        **({"tot_time": exec_time} if exec_time is not None else {}),
    )
    for number, step in enumerate(walk_steps(root), start=1):
        step.id = number

    binary = list(ctx.binary_data)
    if args.attach_log:
        log = _log_text(record.get("log_records"), tz)
        if log:
            binary.append(BinaryData.from_bytes("openhtf-log.txt", log.encode(), "text/plain"))
    report = UUTReport(
        id=uuid.uuid4(),
        # Identities are never shortened: a cut serial would name another unit. Too long
        # fails validation with the field named.
        pn=part,
        sn=serial,
        rev=revision,
        process_code=process_code,
        result=result,
        machine_name=short(station),
        location=context.station.location,
        purpose=context.station.purpose,
        start=start,
        uut=_uut_info(record, header, exec_time, marginal),
        root=root,
        **given(misc_infos=_misc_infos(metadata, record, ctx) or None, binary_data=binary or None),
    )
    return ConverterResult.ok(report, confidence=ctx.confidence, warnings=ctx.warnings)


def _process_code(
    header: dict[str, str], context: ConverterContext, defaults: HeaderDefaults
) -> int:
    """The process code the metadata states, or the one of the operation it names, else the
    ``process_code`` argument (by the shared defaults rule)."""
    code = _first(header, _PROCESS_CODE_KEYS)
    if (number := _small_int(code)) is not None:
        return number
    name = _first(header, _PROCESS_NAME_KEYS)
    if name is None:
        return defaults.code(None)
    found = context.reference.process_code(name)
    if found is None:
        return defaults.code(None, f"operation {name!r} is not a known process")
    return found


def _uut_info(
    record: dict[str, Any], header: dict[str, str], exec_time: float | None, marginal: bool
) -> UUTInfo:
    fields: dict[str, Any] = {}
    for key, names in (
        ("user", _OPERATOR_KEYS),
        ("fixture_id", _FIXTURE_KEYS),
        ("batch_sn", _BATCH_KEYS),
        ("comment", _COMMENT_KEYS),
    ):
        if (value := _first(header, names)) is not None:
            fields[key] = value
    if (socket := _small_int(_first(header, _SOCKET_KEYS))) is not None:
        fields["test_socket_index"] = socket
    if exec_time is not None:
        fields["exec_time"] = exec_time
    if marginal:
        fields["comment"] = " ".join(filter(None, [fields.get("comment"), "(marginal pass)"]))
    details = expect_list(record.get("outcome_details"), "outcome_details")
    texts, codes = [], []
    for index, item in enumerate(details):
        detail = expect_dict(item, f"outcome_details[{index}]")
        code, description = detail.get("code"), detail.get("description")
        codes.append(code)
        texts.append(": ".join(str(part) for part in (code, description) if part not in (None, "")))
    if any(texts):
        fields["error_message"] = "; ".join(t for t in texts if t)
    first_code = codes[0] if codes else None
    if _is_int32(first_code):
        fields["error_code"] = first_code
    return UUTInfo(**fields)


def _misc_infos(
    metadata: dict[str, Any], record: dict[str, Any], ctx: PhaseContext
) -> list[MiscInfo]:
    """Every scalar metadata entry not used for a header field, then the diagnoses."""
    infos: list[MiscInfo] = []
    for key, value in metadata.items():
        text = _scalar(value)
        if text is None or _normal(key) in _HEADER_KEYS:
            continue
        numeric = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        fields: dict[str, Any] = {"description": short(str(key)), "text": short(text)}
        if numeric is not None and abs(numeric) < 1e300:
            fields["numeric"] = numeric
        infos.append(MiscInfo(**fields))
    for index, item in enumerate(expect_list(record.get("diagnoses"), "diagnoses")):
        diagnosis = expect_dict(item, f"diagnoses[{index}]")
        result = _scalar(diagnosis.get("result")) or "?"
        description = _scalar(diagnosis.get("description"))
        text = f"{result}: {description}" if description else result
        infos.append(MiscInfo(description="diagnosis", text=short(text)))
    if len(infos) > _MAX_MISC_INFOS:
        ctx.warn(
            f"{len(infos) - _MAX_MISC_INFOS} metadata entries and diagnoses beyond the "
            f"first {_MAX_MISC_INFOS} were not carried over as misc infos"
        )
        infos = infos[:_MAX_MISC_INFOS]
    return infos


def _log_text(raw: Any, tz: tzinfo) -> str:
    lines = []
    for index, item in enumerate(expect_list(raw, "log_records")):
        entry = expect_dict(item, f"log_records[{index}]")
        when = millis_to_datetime(entry.get("timestamp_millis"), tz, f"log_records[{index}]")
        level = entry.get("level")
        level_name = _LEVELS.get(level, str(level)) if isinstance(level, int) else str(level)
        stamp = when.isoformat(timespec="milliseconds") if when else "-"
        lines.append(f"{stamp} {level_name} {entry.get('logger_name')}: {entry.get('message')}")
    return "\n".join(lines) + ("\n" if lines else "")


def _small_int(text: str | None) -> int | None:
    """An int32 written as text, else None (length checked first: ``int()`` of thousands of
    digits raises)."""
    if text is None or not re.fullmatch(r"\s*-?\d{1,10}\s*", text):
        return None
    number = int(text)
    return number if _is_int32(number) else None


def _is_int32(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


def _first(header: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = header.get(name)
        if value:
            return value
    return None


def _normal(key: str) -> str:
    return re.sub(r"[\s_\-]", "", str(key)).lower()


def _scalar(value: Any) -> str | None:
    """Text of a string or number (metadata values, ids); None for objects, lists and null."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None
