"""ATML: IEEE 1636.1 TestResults documents, as NI TestStand writes them (ATML 2.02, 5.00, 6.01).

One ``<TestResults>`` describes one unit: who tested it (``<Personnel>``), where
(``<TestStation>``), what (``<UUT>``) and how it went (``<ResultSet>``, a tree of sequences and
steps). ATML 5.00 and 6.01 wrap one or more of them in a ``<TestResultsCollection>`` - a batch or
parallel model run puts every socket's unit in the same file - so each ``<TestResults>`` (and each
``<ResultSet>`` in it) becomes its own WATS report. The version is told apart by the root
element's namespace. The step tree is read by ``_atml_steps`` and ``_atml_measurements`` (shared
helpers in ``_atml_common``); the mapping tables are in docs/converters/atml.md.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast
from xml.etree.ElementTree import Element

from pydantic import BaseModel, Field, ValidationError

from wats.api.models import (
    MiscInfo,
    ReportResult,
    SequenceCallStep,
    StepBase,
    StepStatus,
    UUTInfo,
    UUTReport,
    describe_validation_error,
    dump_report,
    parse_report,
)
from wats.converters.base import (
    ConverterBase,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    read_source,
)
from wats.converters.builtin._atml_common import (
    AtmlError,
    WalkState,
    child,
    children,
    find,
    given,
    outcome_status,
    parse_number,
    parse_time,
    short,
    text_of,
)
from wats.converters.builtin._atml_steps import build_sequence, sequence_parts
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
from wats.converters.provenance import source_id
from wats.xmlsafe import XmlError, local_name, namespace_of, parse_xml, root_element

__all__ = ["ATML_VERSIONS", "ATMLArguments", "ATMLConverter"]

ATML_VERSIONS: dict[str, str] = {
    "http://www.ieee.org/ATML/2007/TestResults": "2.02",
    "urn:IEEE-1636.1:2011:01:TestResults": "5.00",
    "urn:IEEE-1636.1:2011:01:TestResultsCollection": "5.00",
    "urn:IEEE-1636.1:2013:TestResults": "6.01",
    "urn:IEEE-1636.1:2013:TestResultsCollection": "6.01",
}
"""Namespace of the root element → ATML version TestStand calls it."""

_ROOTS = ("TestResultsCollection", "TestResults")


_RESULTS: dict[StepStatus, ReportResult] = {
    StepStatus.PASSED: ReportResult.PASSED,
    StepStatus.FAILED: ReportResult.FAILED,
    StepStatus.ERROR: ReportResult.ERROR,
    StepStatus.TERMINATED: ReportResult.TERMINATED,
    StepStatus.DONE: ReportResult.DONE,
}


class ATMLArguments(BaseModel):
    """Settings of the ATML converter (``arguments = { ... }`` in a ``[[converters]]`` table).

    The ``default_*`` fields and ``process_code`` fill WATS-required header fields the file
    leaves empty, with a warning and confidence capped at 0.8 (wats.converters.defaults)."""

    process_code: int = process_code_argument()
    """Test operation of the reports. TestStand's ATML names none; 10 is "SW Debug"."""
    process_name: str | None = Field(
        default=None,
        description="An operation name to look up in the server's processes instead of "
        "process_code (falls back to process_code with a warning when the name is unknown).",
    )
    default_revision: DefaultText = revision_argument("NA")
    """Revision when the UUT definition carries no ``version`` (TestStand writes none)."""
    default_part_number: DefaultIdentifier = part_number_argument()
    """Part number when the file names none (a batch or parallel model run may not)."""
    default_serial_number: DefaultIdentifier | None = serial_number_argument()
    """Serial number when ``<UUT><SerialNumber>`` is empty; unset, such a file fails."""


class ATMLConverter(ConverterBase):
    """ATML (IEEE 1636.1) test results written by NI TestStand: versions 2.02, 5.00 and 6.01."""

    name = "atml"
    version = "1.0"
    file_patterns = ("*.xml", "*.atml")
    kind = "file"
    source_ids = True  # <TestResults uuid="...">: each unit's result has an id of its own
    Arguments = ATMLArguments

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """One report per ``<TestResults>``/``<ResultSet>``; an unreadable one fails the file,
        so a batch is never half delivered."""
        args = context.arguments
        if not isinstance(args, ATMLArguments):
            args = ATMLArguments()
        data, problem = read_source(source)
        if problem is not None:
            return ConverterResult.fail(problem)
        try:
            root = parse_xml(data)
        except XmlError as exc:
            return ConverterResult.fail(str(exc))
        namespace, tag = namespace_of(root.tag), local_name(root.tag)
        version = ATML_VERSIONS.get(namespace)
        if version is None or tag not in _ROOTS:
            return ConverterResult.fail(
                f"not ATML test results: root element <{tag}> in namespace "
                f"{namespace or '(none)'!r}; expected <TestResults> or <TestResultsCollection> "
                f"of ATML 2.02, 5.00 or 6.01"
            )
        units = [root] if tag == "TestResults" else children(root, "TestResults")
        if not units:
            return ConverterResult.fail("the <TestResultsCollection> holds no <TestResults>")
        reports: list[UUTReport] = []
        warnings: list[str] = []
        confidence = 1.0
        for where, unit, result_set in _result_sets(units):
            try:
                report, state, sure = _convert_unit(unit, result_set, version, args, context)
            except (AtmlError, HeaderFieldError) as exc:
                return ConverterResult.fail(f"{where}{exc}")
            except ValidationError as exc:
                return ConverterResult.fail(
                    f"{where}not a valid report: {describe_validation_error(exc)}"
                )
            reports.append(report)
            warnings += [f"{where}{warning}" for warning in state.warnings]
            confidence = min(confidence, sure)
        if not reports:
            return ConverterResult.fail("the document holds no <ResultSet>")
        return ConverterResult.ok(reports, confidence, warnings=warnings)

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """0.95 for a root element of ATML 2.02/5.00/6.01 test results; 0.5 for a TestResults
        root in some other ATML-looking namespace; 0.05 for other XML; 0 for non-XML. Only the
        root element is read."""
        try:
            head = source.read_head()
        except OSError:
            return 0.0
        root = root_element(head)
        if root is None:
            return 0.0
        namespace, tag = root
        if tag in _ROOTS and namespace in ATML_VERSIONS:
            return 0.95
        if tag in _ROOTS and ("1636.1" in namespace or "atml" in namespace.lower()):
            return 0.5
        return 0.05


def _result_sets(units: list[Element]) -> Iterator[tuple[str, Element, Element | None]]:
    """(where-prefix for messages, <TestResults>, <ResultSet>) for every unit tested."""
    many = len(units) > 1
    for index, unit in enumerate(units, start=1):
        result_sets = children(unit, "ResultSet")
        if not result_sets:
            yield f"<TestResults> {index}: ", unit, None
            continue
        for inner, result_set in enumerate(result_sets, start=1):
            where = f"<TestResults> {index}: " if many else ""
            if len(result_sets) > 1:
                where += f"<ResultSet> {inner}: "
            yield where, unit, result_set


def _convert_unit(
    unit: Element,
    result_set: Element | None,
    version: str,
    args: ATMLArguments,
    context: ConverterContext,
) -> tuple[UUTReport, WalkState, float]:
    """The report of one unit's result set, the walk's warnings, and the confidence."""
    if result_set is None:
        raise AtmlError("no <ResultSet> (the results of the run) in <TestResults>")
    local = context.now().tzinfo
    if local is None:  # a clock that breaks the aware-time contract: use the machine's offset
        local = datetime.now().astimezone().tzinfo or UTC
    state = WalkState(tz=local)
    confidence = 1.0

    start, had_offset = parse_time(result_set.get("startDateTime"), state.tz)
    if start is None:
        raise AtmlError("<ResultSet> has no readable startDateTime")
    if not had_offset:
        offset = start.strftime("%z")
        state.warn(
            f"startDateTime {result_set.get('startDateTime')} has no UTC offset; assumed the "
            f"station's local offset {offset[:3]}:{offset[3:]}"
        )
        confidence = min(confidence, 0.9)

    defaults = HeaderDefaults(args, state.warn)
    sn = defaults.text(
        HeaderField.SERIAL_NUMBER, text_of(find(unit, "UUT", "SerialNumber")), "<UUT><SerialNumber>"
    )
    pn = defaults.text(HeaderField.PART_NUMBER, _part_number(unit))
    definition = find(unit, "UUT", "Definition")
    recorded_rev = (definition.get("version") if definition is not None else None) or ""
    rev = defaults.text(HeaderField.REVISION, recorded_rev.strip(), "<UUT><Definition> version")
    process_code = _process_code(args, context, defaults)
    confidence = min(confidence, defaults.confidence)

    root = _root_sequence(result_set, state)
    _number_steps(root)
    failure_step = _mark_critical_failures(unit, state)
    result = _report_result(result_set, root, state)
    if state.guessed:
        confidence = min(confidence, 0.8)

    station = text_of(find(unit, "TestStation", "SerialNumber")) or context.station.name
    operator = find(unit, "Personnel", "SystemOperator")
    user = None
    if operator is not None:
        user = operator.get("name") or operator.get("ID") or None
    uut = UUTInfo(
        **given(
            user=user,
            exec_time=_exec_time(result_set, start, state),
            batch_sn=_result_set_property(unit, "BatchSerialNumber"),
            test_socket_index=_socket_index(unit),
            step_id_caused_uut_failure=failure_step.id if failure_step else None,
            **_run_errors(result_set),
        )
    )
    report = UUTReport(
        # TestStand writes a uuid on every <TestResults>: the source's own id, kept by the
        # pipeline (source_ids); without one the nil id asks the pipeline to derive one
        id=source_id(unit.get("uuid")) or uuid.UUID(int=0),
        pn=pn,
        sn=sn,
        rev=rev,
        process_code=process_code,
        result=result,
        machine_name=short(station),
        location=context.station.location,
        purpose=context.station.purpose,
        start=start,
        uut=uut,
        root=root,
        misc_infos=_misc_infos(unit, result_set, version),
    )
    # Validate the whole report once more, as the server will, so any rule spanning fields
    # fails here with the field named.
    checked = cast(UUTReport, parse_report(dump_report(report)))
    return checked, state, confidence


def _part_number(unit: Element) -> str:
    """The UUT's part number: the identification number typed ``Part``, else the first
    identification number, else the model name; '' when the file names none."""
    identification = find(unit, "UUT", "Definition", "Identification")
    numbers = children(child(identification, "IdentificationNumbers"), "IdentificationNumber")
    typed = [n for n in numbers if (n.get("type") or "").lower() == "part"]
    for candidate in typed + numbers:
        number = (candidate.get("number") or "").strip()
        if number:
            return number
    return text_of(child(identification, "ModelName"))


def _root_sequence(result_set: Element, state: WalkState) -> SequenceCallStep:
    """The main sequence as the root step. ATML 5.00/6.01 make the ``<ResultSet>`` itself the
    main sequence; ATML 2.02 nests it as the result set's single ``<TestGroup>``."""
    main = result_set
    if find(result_set, "Extension", "TSStepProperties") is None:
        groups = children(result_set, "TestGroup")
        others = children(result_set, "Test") + children(result_set, "SessionAction")
        if len(groups) == 1 and not others:
            main = groups[0]
    path, sequence = sequence_parts(main)
    if path is None and main is not result_set:
        path = result_set.get("name") or None
    # Named after the sequence in every version (2.02 calls it "MainSequence Callback", the
    # others do not say), so one run reads the same whichever version wrote it.
    return build_sequence(main, state, depth=0, name=sequence or "MainSequence")


def _number_steps(root: SequenceCallStep) -> None:
    counter = itertools.count(1)
    pending: list[StepBase] = [root]
    while pending:
        step = pending.pop()
        step.id = next(counter)
        if isinstance(step, SequenceCallStep):
            pending.extend(reversed(step.steps))


def _mark_critical_failures(unit: Element, state: WalkState) -> StepBase | None:
    """Flag the steps TestStand lists in its critical failure stack (ATML 5.00/6.01) as having
    caused the UUT failure; the innermost one is the report's failing step."""
    stack = find(unit, "Extension", "TSResultSetProperties", "CriticalFailureStack")
    failing: StepBase | None = None
    for entry in children(stack, "CriticalFailureStackEntry"):
        step = state.by_result_id.get(entry.get("resultID") or "")
        if step is not None:
            step.caused_uut_failure = True
            failing = step
    return failing


def _report_result(result_set: Element, root: SequenceCallStep, state: WalkState) -> ReportResult:
    status = outcome_status(child(result_set, "Outcome"), state, "<ResultSet>")
    if status is None:
        status = root.status
        state.warn("<ResultSet> has no <Outcome>; the result is the main sequence's status")
    result = _RESULTS.get(status)
    if result is None:
        state.warn(f"the run's outcome is {status.name.lower()}; reported as Done")
        return ReportResult.DONE
    return result


def _exec_time(result_set: Element, start: datetime, state: WalkState) -> float | None:
    total = find(result_set, "Extension", "TSStepProperties", "TotalTime")
    if total is not None:
        return parse_number(total.get("value"), "<ResultSet> TotalTime")
    end, _ = parse_time(result_set.get("endDateTime"), state.tz)
    if end is not None and end >= start:
        return (end - start).total_seconds()
    return None


def _result_set_property(unit: Element, name: str) -> str | None:
    found = find(unit, "Extension", "TSResultSetProperties", name)
    if found is None:
        return None
    value = (found.get("value") or text_of(found)).strip()
    return value or None


def _socket_index(unit: Element) -> int | None:
    raw = _result_set_property(unit, "TestSocketIndex")
    if raw is None:
        return None
    try:
        return int(float(raw))
    except (ValueError, OverflowError):
        return None


def _run_errors(result_set: Element) -> dict[str, object]:
    fields: dict[str, object] = {}
    for event in children(child(result_set, "Events"), "Event"):
        datum = find(event, "Data", "Datum")
        if datum is None:
            continue
        if event.get("ID") == "Error Code":
            try:
                fields["error_code"] = int(float(datum.get("value") or ""))
            except (ValueError, OverflowError):
                continue
        elif event.get("ID") == "Error Message":
            message = text_of(child(datum, "Value")) or datum.get("value")
            if message:
                fields["error_message"] = message
    return fields


def _process_code(args: ATMLArguments, context: ConverterContext, defaults: HeaderDefaults) -> int:
    """ATML names no operation: the configured ``process_name`` looked up in the server's
    processes, else ``process_code`` (a default, so with a warning)."""
    if args.process_name:
        code = context.reference.process_code(args.process_name)
        if code is not None:
            return code
        return defaults.code(
            None,
            f"process {args.process_name!r} is not in the server's processes (or they were "
            f"never synced)",
        )
    return defaults.code(None)


def _misc_infos(unit: Element, result_set: Element, version: str) -> list[MiscInfo]:
    """Header facts WSJF has no field for: the sequence file, the model name, the version."""
    infos: list[MiscInfo] = []
    path, _ = sequence_parts(result_set)
    sequence_file = (path or result_set.get("name") or "").replace("\\", "/").rsplit("/", 1)[-1]
    if sequence_file:
        infos.append(MiscInfo(description="Sequence file", text=short(sequence_file)))
    model = text_of(find(unit, "UUT", "Definition", "Identification", "ModelName"))
    if model:
        infos.append(MiscInfo(description="Model name", text=short(model)))
    infos.append(MiscInfo(description="ATML version", text=version))
    return infos
